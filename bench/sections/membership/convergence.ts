/**
 * Join convergence: every member started alone and then told at once to join the first
 * ({@linkcode runtimeJoin}), or every member spawned at once ({@linkcode spawnAtOnce}).
 *
 * @module
 */

import { cpuSeconds } from "../../_proc.ts";
import { errText, POLL_MS, sleep, SLOW_POLL_MS } from "./common.ts";
import type { Lab } from "./lab.ts";
import { exactly, Ring, Watch } from "./ring.ts";
import { lastLoggedJoin } from "./server_log.ts";
import type { Member, System, View } from "./systems.ts";

/** Several runs of one convergence measurement. */
export interface Runs {
  /** The median run (by `all`; of an even count, the slower middle one). */
  med: Convergence;
  /** Every run's `all`, ms, in order. */
  each: number[];
}

/**
 * The median of runs.
 *
 * @param byAfterUp rank by `all − lastUp` (discovery) instead of `all`
 */
export function runsOf(runs: Convergence[], byAfterUp = false): Runs {
  const key = (c: Convergence) => byAfterUp ? c.all - c.lastUp! : c.all;
  const sorted = [...runs].sort((a, b) => key(a) - key(b));
  return { med: sorted[Math.floor(sorted.length / 2)], each: runs.map(key) };
}

/** One convergence run. */
export interface Convergence {
  /** ms from t0 until every member listed all. */
  all: number;
  /** ms from t0 until the first member listed all. */
  first: number;
  /** ms from t0 until the last member was up (spawn runs). */
  lastUp?: number;
  /** From circuit's server.log: ms from t0 until the last `joined` line. */
  logLast?: number;
  /** CPU seconds all members used from t0 until every member listed all. */
  cpuS?: number;
}

/**
 * Every member started alone; then all but the first told at once to join the first.
 * Leaves the cluster running (returned) for the idle measurement.
 */
export async function runtimeJoin(sys: System, lab: Lab, n: number): Promise<[Convergence, Ring]> {
  const ring = new Ring(sys, lab);
  try {
    await Promise.all(Array.from({ length: n }, (_, i) => ring.add(i, {})));
    const seed = ring.members.get(0)!.m;
    const names = ring.names();
    await sleep(500); // let start-up settle
    const pids = [...ring.members.values()].map((x) => x.m.svc.pid);
    const cpu0 = cpuSeconds(...pids);
    const t0 = performance.now();
    const wallT0 = performance.timeOrigin + t0;
    const w = new Watch(n, t0, exactly(names));
    // Errors are kept, not thrown, so none is left unhandled if the wait fails first.
    const joins = [...ring.members.values()].filter((x) => x.m !== seed).map((x) =>
      x.v.join(seed).then(() => null, (err: unknown) => err)
    );
    [...ring.members.values()].forEach((x, i) => w.track(i, x.v));
    const r = await w.wait(60_000, `${sys.label}: ${n} to converge after joining`);
    const cpuS = cpuSeconds(...pids) - cpu0;
    const failed = (await Promise.all(joins)).find((e) => e !== null);
    if (failed) throw new Error(`a join failed: ${errText(failed)}`);
    const logLast = sys.label === "circuit"
      ? await lastLoggedJoin([...ring.members.values()].map((x) => x.m), wallT0)
      : undefined;
    return [{ all: r.last, first: r.first, logLast, cpuS }, ring];
  } catch (err) {
    await ring.stop();
    throw err;
  }
}

/**
 * Members spawned at once: with `join`, the first is started and up before t0 and the
 * others spawned at t0 joining it; with `discover`, all spawned at t0 with `--discover`.
 */
export async function spawnAtOnce(
  sys: System,
  lab: Lab,
  n: number,
  mode: "join" | "discover",
): Promise<Convergence> {
  const started: Member[] = [];
  const views: View[] = [];
  try {
    let seed: Member | undefined;
    if (mode === "join") {
      seed = await sys.start(lab, 0, {}, true);
      started.push(seed);
      await sleep(300);
    }
    const t0 = performance.now();
    const wallT0 = performance.timeOrigin + t0;
    const names: (string | null)[] = new Array(n).fill(null);
    if (seed) names[0] = seed.name;
    // Every slot must list n names, and once all are up, exactly those.
    const w = new Watch(n, t0, (_i, got) => {
      if (got.size !== n) return false;
      return names.every((x) => x === null || got.has(x));
    });
    w.pollMs = SLOW_POLL_MS;
    let lastUp = 0;
    const hosts = Array.from({ length: n }, (_, i) => i).filter((i) => !seed || i > 0);
    const up = async (m: Member) => {
      const v = await sys.view(m, performance.now() + 30_000);
      views.push(v);
      w.track(m.host, v);
    };
    if (seed) await up(seed);
    await Promise.all(hosts.map(async (i) => {
      const m = await sys.start(
        lab,
        i,
        mode === "join" ? { join: seed } : { discover: true },
        false,
      );
      started.push(m);
      names[i] = m.name;
      await up(m);
      lastUp = Math.max(lastUp, performance.now() - t0);
    }));
    w.pollMs = POLL_MS;
    const r = await w.wait(60_000, `${sys.label}: ${n} spawned at once (${mode}) to converge`);
    const logLast = sys.label === "circuit" ? await lastLoggedJoin(started, wallT0) : undefined;
    return { all: r.last, first: r.first, lastUp, logLast };
  } finally {
    for (const v of views) v.close();
    await lab.stop(started.map((m) => m.svc));
  }
}
