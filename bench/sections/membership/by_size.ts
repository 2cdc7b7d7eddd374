/**
 * Join convergence and idle cost at one cluster size, circuit beside serf: every member
 * told at once to join the first, every member spawned at once (with `-j` / `-join`, and
 * circuit's `--discover`), and the idle cluster's RSS, CPU and bytes/s.
 *
 * @module
 */

import type { SectionContext } from "../../_context.ts";
import { GROUP, type Params, POLL_MS } from "./common.ts";
import { type Convergence, type Runs, runsOf, runtimeJoin, spawnAtOnce } from "./convergence.ts";
import { type Idle, idle } from "./idle.ts";
import { Lab } from "./lab.ts";
import { attempt, fmt, goalNote, goalOf, ms, type Rows } from "./rows.ts";
import type { System, Systems } from "./systems.ts";

/** The goal for join convergence (and, from the last up, for discovery), ms. */
const FIXED_MS = 500;

/** What the steps at one size share. */
interface SizeRun {
  ctx: SectionContext;
  rows: Rows;
  lab: Lab;
  /** Members. */
  n: number;
  P: Params;
}

/** What each system measured at one size; null when it failed or was not run. */
interface SizeResults {
  sJoin: Runs | null;
  sSpawn: Runs | null;
  sIdle: Idle | null;
  cJoin: Runs | null;
  cSpawn: Runs | null;
  cDisc: Runs | null;
  cIdle: Idle | null;
}

/** Runs of the join: the last one keeps its cluster for the idle measurement. */
async function joinRuns(run: SizeRun, sys: System): Promise<[Runs, Idle]> {
  const { lab, n, P } = run;
  const runs: Convergence[] = [];
  for (let r = 0; r < P.reps; r++) {
    const [c, ring] = await runtimeJoin(sys, lab, n);
    runs.push(c);
    ring.closeViews();
    if (r < P.reps - 1) {
      await ring.stop();
      continue;
    }
    const members = [...ring.members.values()].map((x) => x.m);
    const i = await idle(lab, members, P.idleS).finally(() => ring.stop());
    return [runsOf(runs), i];
  }
  throw new Error("no runs");
}

/** Runs of members spawned at once. */
async function spawnRuns(run: SizeRun, sys: System, mode: "join" | "discover"): Promise<Runs> {
  const { lab, n, P } = run;
  const runs: Convergence[] = [];
  for (let r = 0; r < P.reps; r++) runs.push(await spawnAtOnce(sys, lab, n, mode));
  return runsOf(runs, mode === "discover");
}

/** Every measurement at this size; serf first: circuit's goals include being ahead of it. */
async function measure(run: SizeRun, systems: Systems): Promise<SizeResults> {
  const { ctx, rows, n } = run;
  const { circuit, serf } = systems;
  let sJoin: Runs | null = null, sSpawn: Runs | null = null, sIdle: Idle | null = null;
  if (serf) {
    [sJoin, sIdle] = await attempt(
      ctx,
      rows,
      `serf: ${n} agents join the first`,
      () => joinRuns(run, serf),
    ) ?? [null, null];
    sSpawn = await attempt(
      ctx,
      rows,
      `serf: ${n} agents spawned with -join`,
      () => spawnRuns(run, serf, "join"),
    );
  }
  const [cJoin, cIdle] = await attempt(
    ctx,
    rows,
    `${n} servers join the first`,
    () => joinRuns(run, circuit),
  ) ?? [null, null];
  const cSpawn = await attempt(
    ctx,
    rows,
    `${n} servers spawned with -j`,
    () => spawnRuns(run, circuit, "join"),
  );
  const cDisc = await attempt(
    ctx,
    rows,
    `${n} servers spawned with --discover`,
    () => spawnRuns(run, circuit, "discover"),
  );
  return { sJoin, sSpawn, sIdle, cJoin, cSpawn, cDisc, cIdle };
}

/** "median of K runs (…); " when there were several runs, else nothing. */
function runsNote(r: Runs): string {
  return r.each.length > 1
    ? `median of ${r.each.length} runs (${r.each.map(ms).join(", ")} ms); `
    : "";
}

/** The join's rows (or serf's skipped row). */
function joinRows(run: SizeRun, res: SizeResults, serfWhy: string | null): void {
  const { rows, n } = run;
  const { cJoin, sJoin } = res;
  const fixed = FIXED_MS;
  const joinHow = `all ${n} started alone and up; at t0 all but the first are told at once ` +
    `to join the first`;
  const cpuNote = (c: Convergence) =>
    c.cpuS === undefined ? "" : `; the ${n} used ${c.cpuS.toFixed(2)} CPU-s in all meanwhile`;
  if (cJoin) {
    const c = cJoin.med;
    rows.add({
      name: `${n} servers: join the first → all list ${n}`,
      value: c.all,
      unit: "ms",
      goal: goalOf(fixed, sJoin?.med.all),
      notes: `${runsNote(cJoin)}${joinHow} (the server's \`join\` through the library); until ` +
        `every server's \`ls /\` lists all ${n}; first after ${ms(c.first)} ms; last ` +
        `\`joined\` line in the server.logs at ${ms(c.logLast)} ms${cpuNote(c)}; polled every ` +
        `${POLL_MS} ms. ${goalNote(fixed, sJoin?.med.all, "ms")}`,
    });
  }
  if (sJoin) {
    const c = sJoin.med;
    rows.add({
      name: `serf: ${n} agents: join the first → all list ${n}`,
      value: c.all,
      unit: "ms",
      notes: `${runsNote(sJoin)}${joinHow} (RPC \`join\`); until every agent's RPC ` +
        `\`members\` lists all ${n} alive; first after ${ms(c.first)} ms${cpuNote(c)}; ` +
        `polled every ${POLL_MS} ms`,
    });
  } else if (serfWhy !== null) {
    rows.add({ name: `serf: ${n} agents (skipped)`, value: null, unit: "", notes: serfWhy });
  }
}

/** The rows of members spawned at once, and of discovery. */
function spawnRows(run: SizeRun, res: SizeResults): void {
  const { rows, n } = run;
  const { cSpawn, sSpawn, cDisc } = res;
  const fixed = FIXED_MS;
  const spawnHow = (what: string, c: Convergence) =>
    `the first up, then at t0 the other ${n - 1} spawned at once with ${what}; until every ` +
    `member lists all ${n}; includes process start-up (all up after ${ms(c.lastUp)} ms, on ` +
    `${navigator.hardwareConcurrency} cores)`;
  if (cSpawn) {
    const c = cSpawn.med;
    rows.add({
      name: `${n} servers spawned with -j the first → all list ${n}`,
      value: c.all,
      unit: "ms",
      goal: goalOf(null, sSpawn?.med.all),
      notes: `${runsNote(cSpawn)}${spawnHow("-j URL", c)}; last \`joined\` line logged at ` +
        `${ms(c.logLast)} ms. ${goalNote(null, sSpawn?.med.all, "ms")}`,
    });
  }
  if (sSpawn) {
    rows.add({
      name: `serf: ${n} agents spawned with -join the first → all list ${n}`,
      value: sSpawn.med.all,
      unit: "ms",
      notes: `${runsNote(sSpawn)}${spawnHow("-join ADDR", sSpawn.med)}`,
    });
  }
  if (cDisc) {
    const c = cDisc.med;
    rows.add({
      name: `${n} servers spawned with --discover: last up → all list ${n}`,
      value: c.all - c.lastUp!,
      unit: "ms",
      goal: goalOf(fixed, null),
      notes: `${runsNote(cDisc)}all ${n} spawned at once with --discover ${GROUP} (no join); ` +
        `from the moment the last printed its URL (${ms(c.lastUp)} ms after spawning) until ` +
        `every server lists all ${n}; ${ms(c.all)} ms from spawning; last \`joined\` line ` +
        `logged at ${ms(c.logLast)} ms from spawning. ${goalNote(fixed, null, "ms")}; serf ` +
        `has no comparable figure (its -discover is mDNS)`,
    });
  }
}

/** The idle rows: RSS, CPU and bytes/s, circuit's before serf's for each. */
function idleRows(run: SizeRun, res: SizeResults): void {
  const { rows, n } = run;
  const { cIdle, sIdle } = res;
  const idleS = run.P.idleS;
  const idleHow = `over ${idleS} s after joining the first, no client connected`;
  if (cIdle) {
    rows.add({
      name: `idle, ${n} servers: RSS per server (median)`,
      value: cIdle.rss,
      unit: "MiB",
      goal: goalOf(null, sIdle?.rss),
      notes: `VmRSS of the server process (${cIdle.comm}), MiB = 2^20 B; min ` +
        `${fmt(cIdle.rssMin)}, max ${fmt(cIdle.rssMax)}. ${goalNote(null, sIdle?.rss, "MiB")}`,
    });
  }
  if (sIdle) {
    rows.add({
      name: `serf: idle, ${n} agents: RSS per agent (median)`,
      value: sIdle.rss,
      unit: "MiB",
      notes: `VmRSS of the agent process (${sIdle.comm}); min ${fmt(sIdle.rssMin)}, max ` +
        fmt(sIdle.rssMax),
    });
  }
  if (cIdle) {
    rows.add({
      name: `idle, ${n} servers: CPU per server (mean)`,
      value: cIdle.cpu,
      unit: "%",
      goal: goalOf(null, sIdle?.cpu),
      notes: `${idleHow}; utime+stime, one core = 100 %; busiest ${fmt(cIdle.cpuMax)} %; ` +
        `${cIdle.flaps} failed/left lines about one another in the server.logs since start. ` +
        goalNote(null, sIdle?.cpu, "%"),
    });
  }
  if (sIdle) {
    rows.add({
      name: `serf: idle, ${n} agents: CPU per agent (mean)`,
      value: sIdle.cpu,
      unit: "%",
      notes: `${idleHow}; busiest ${fmt(sIdle.cpuMax)} %; ${sIdle.flaps} failed/left ` +
        `reports about one another in the agents' logs since start`,
    });
  }
  if (cIdle) {
    rows.add({
      name: `idle, ${n} servers: bytes/s sent per server (mean)`,
      value: cIdle.sent,
      unit: "B/s",
      goal: goalOf(null, sIdle?.sent),
      notes: `${idleHow}; bytes the host's veth sent (its bridge end's rx counter), all ` +
        `protocols: SWIM over UDP and the mesh's TCP connections (pings every 1 s when ` +
        `quiet); received ${fmt(cIdle.recv)} B/s. ${goalNote(null, sIdle?.sent, "B/s")}`,
    });
  }
  if (sIdle) {
    rows.add({
      name: `serf: idle, ${n} agents: bytes/s sent per agent (mean)`,
      value: sIdle.sent,
      unit: "B/s",
      notes: `${idleHow}; received ${fmt(sIdle.recv)} B/s`,
    });
  }
}

/**
 * Join convergence and idle cost of `n` members on a LAN of their own; rows recorded
 * (not flushed).
 *
 * @param ctx the run's context
 * @param rows the section's rows
 * @param systems circuit, and serf or why not
 * @param n members
 * @param P the section's sizes
 */
export async function convergenceAndIdle(
  ctx: SectionContext,
  rows: Rows,
  systems: Systems,
  n: number,
  P: Params,
): Promise<void> {
  ctx.progress(`membership: ${n} hosts`);
  await using lab = await Lab.create(n);
  const run: SizeRun = { ctx, rows, lab, n, P };
  const res = await measure(run, systems);
  joinRows(run, res, systems.serfWhy);
  spawnRows(run, res);
  idleRows(run, res);
}
