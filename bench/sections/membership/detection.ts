/**
 * Failure detection: a member killed with `kill -9` or stopped with SIGSTOP, timed until
 * every other member no longer lists it; circuit beside serf on one LAN.
 *
 * @module
 */

import type { SectionContext } from "../../_context.ts";
import { median, type Params, POLL_MS, sleep } from "./common.ts";
import type { Lab } from "./lab.ts";
import { Ring, Watch } from "./ring.ts";
import { attempt, goalNote, goalOf, type Rows } from "./rows.ts";
import type { System, Systems } from "./systems.ts";

/** One detection trial. */
export interface Trial {
  how: "kill -9" | "SIGSTOP";
  /** ms until every other member stopped listing it. */
  all: number;
  /** ms until the first did. */
  first: number;
}

/**
 * Kill or stop one member and time until no other lists it; then remove it for good and
 * start a fresh member on its host, so each trial runs in a cluster of the same size.
 */
export async function detectTrial(ring: Ring, host: number, how: Trial["how"]): Promise<Trial> {
  const victim = ring.members.get(host)!;
  const others = [...ring.members.values()].filter((x) => x !== victim);
  const t0 = performance.now();
  const w = new Watch(others.length, t0, (_i, got) => !got.has(victim.m.name));
  ring.lab.signal(victim.m.svc.pid, how === "kill -9" ? "SIGKILL" : "SIGSTOP");
  others.forEach((x, i) => w.track(i, x.v));
  const r = await w.wait(60_000, `${ring.sys.label}: ${how} of ${victim.m.name} noticed`);
  await ring.remove(host, true);
  await sleep(1000);
  await ring.add(host, { join: ring.members.get(0)!.m });
  await ring.converged();
  await sleep(1000);
  return { how, all: r.last, first: r.first };
}

/** The goal per way of failing, ms. */
const FIXED_MS = { "kill -9": 1000, "SIGSTOP": 3000 } as const;

/** What the detection steps share. */
interface DetectionRun {
  ctx: SectionContext;
  rows: Rows;
  lab: Lab;
  P: Params;
}

/**
 * A ring of `P.detectHosts` members joined to the first, converged; then every trial on
 * it: victims the last hosts, never the first (every replacement joins it).
 */
async function trialsOf(run: DetectionRun, sys: System): Promise<Trial[]> {
  const { ctx, lab, P } = run;
  const n = P.detectHosts;
  const victims = Array.from({ length: P.kills + P.stops }, (_, k) => n - 1 - k);
  const ring = new Ring(sys, lab);
  try {
    const seed = await ring.add(0, {});
    for (let i = 1; i < n; i++) await ring.add(i, { join: seed });
    await ring.converged();
    await sleep(1000);
    const out: Trial[] = [];
    for (const [k, host] of victims.entries()) {
      const how = k < P.kills ? "kill -9" : "SIGSTOP";
      ctx.progress(`${sys.label}: ${how} of host ${host + 1}`);
      out.push(await detectTrial(ring, host, how));
    }
    return out;
  } finally {
    await ring.stop();
  }
}

/** The rows: median and worst per way of failing, circuit's before serf's. */
function detectionRows(
  run: DetectionRun,
  serfWhy: string | null,
  cTrials: Trial[] | null,
  sTrials: Trial[] | null,
): void {
  const { rows, P } = run;
  const n = P.detectHosts;
  for (const how of ["kill -9", "SIGSTOP"] as const) {
    const c = cTrials?.filter((t) => t.how === how) ?? [];
    const s = sTrials?.filter((t) => t.how === how) ?? [];
    const list = (ts: Trial[]) =>
      ts.map((t) => `${t.all.toFixed(0)} (first ${t.first.toFixed(0)})`).join(", ");
    const what = how === "kill -9"
      ? "the member's process killed with SIGKILL"
      : "the member's process stopped with SIGSTOP (silent: sockets stay open), SIGKILLed after";
    const how2 = `${n} members joined to the first; ${what}; from the signal until every ` +
      `other member no longer lists it; a fresh member replaces it before the next trial; ` +
      `polled every ${POLL_MS} ms`;
    for (const stat of ["median", "worst"] as const) {
      const pick = (ts: Trial[]) =>
        ts.length
          ? (stat === "median" ? median(ts.map((t) => t.all)) : Math.max(...ts.map((t) => t.all)))
          : null;
      const cv = pick(c), sv = pick(s);
      if (cTrials) {
        rows.add({
          name: `${how} detected everywhere (${stat} of ${c.length})`,
          value: cv,
          unit: "ms",
          goal: goalOf(FIXED_MS[how], sv),
          notes: stat === "median"
            ? `${how2}; trials, ms: ${list(c)}. ${goalNote(FIXED_MS[how], sv, "ms")}`
            : goalNote(FIXED_MS[how], sv, "ms"),
        });
      }
      if (sTrials) {
        rows.add({
          name: `serf: ${how} detected everywhere (${stat} of ${s.length})`,
          value: sv,
          unit: "ms",
          notes: stat === "median"
            ? `${how2} (alive in RPC \`members\`); trials, ms: ${list(s)}`
            : "",
        });
      }
    }
  }
  if (serfWhy !== null) {
    rows.add({ name: "serf: detection (skipped)", value: null, unit: "", notes: serfWhy });
  }
}

/**
 * Detection of circuit beside serf on the LAN; rows recorded.
 *
 * @param ctx the run's context
 * @param rows the section's rows
 * @param lab the LAN of `P.detectHosts` hosts
 * @param systems circuit, and serf or why not
 * @param P the section's sizes
 */
export async function detection(
  ctx: SectionContext,
  rows: Rows,
  lab: Lab,
  systems: Systems,
  P: Params,
): Promise<void> {
  const { circuit, serf } = systems;
  const run: DetectionRun = { ctx, rows, lab, P };
  const sTrials = serf
    ? await attempt(ctx, rows, "serf: detection", () => trialsOf(run, serf))
    : null;
  const cTrials = await attempt(ctx, rows, "detection", () => trialsOf(run, circuit));
  detectionRows(run, systems.serfWhy, cTrials, sTrials);
  rows.flush();
}
