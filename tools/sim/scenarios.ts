/**
 * The simulator's scenarios and figures: one converged cluster of real member lists per
 * size, then in turn a quiet spell (bytes/s per member), a join, silent crashes (SWIM
 * alone), a `kill -9` whose watchers report it, 10 % loss and 1 % of members starved
 * (false positives), each measured as every member saw it.
 *
 * @module
 */

import {
  membershipConfig,
  type MembershipProfile,
  suspicionBounds,
} from "../../net/membership/mod.ts";
import { SimCluster } from "./cluster.ts";

/** Options of {@linkcode runScenarios}. */
export interface ScenarioOptions {
  /** Members. */
  size: number;
  /** Timing profile. @default {"lan"} */
  profile?: MembershipProfile;
  /** One-way latency between two datacenters (half the members each), ms; 0: one. */
  interDcMs?: number;
  /** Silent crashes to measure, one after another. @default {3} */
  crashes?: number;
  /** Virtual time under 10 % loss and under starvation, each, in ms. @default {60000} */
  soakMs?: number;
  /** Random seed. @default {1} */
  seed?: number;
  /** Progress lines go here. */
  log?: (line: string) => void;
}

/** Percentiles of a sample, in ms. */
export interface Spread {
  /** Sample size. */
  n: number;
  /** Median. */
  p50: number;
  /** 99th percentile. */
  p99: number;
  /** Largest. */
  max: number;
}

/** The figures of one size. */
export interface ScenarioResult {
  size: number;
  profile: MembershipProfile;
  interDcMs: number;
  /** Wall time of each phase, ms. */
  wallMs: Record<string, number>;
  /** Events run and the heap in use after the run. */
  events: number;
  heapMB: number;
  /** Every member lists every live member after bootstrap. */
  converged: boolean;
  /** Bytes/s sent per member while nothing happens (UDP with headers, push-pull). */
  idleBytesPerSec: number;
  /** Per member: time from a join until it lists the new member. */
  join: Spread & { everyone: boolean };
  /** Per member and crash: time from a silent crash until it lists the member failed. */
  crash: Spread & { everyone: boolean };
  /** The same for `kill -9` with its watchers' proof (the server's watch ring). */
  kill: Spread & { everyone: boolean };
  /** The shortest silent-failure detection the suspicion formula allows, ms. */
  suspicionMinMs: number;
  /** False positives under 10 % loss everywhere. */
  loss: FalsePositives;
  /** False positives with 1 % of members starved (5 % duty: 100 ms run every 2 s). */
  starved: FalsePositives & { starvedMembers: number; healthyDeclared: number };
}

/** False declarations of live members. */
export interface FalsePositives {
  /** Virtual time observed, ms. */
  ms: number;
  /** Live members declared failed by at least one member (distinct incidents). */
  incidents: number;
  /** Incidents per member-hour. */
  perMemberHour: number;
  /** Declarations (each member that declared a live member failed counts). */
  declarations: number;
  /** Whether all members list all live ones again 30 s after. */
  healed: boolean;
}

/**
 * Percentiles of a sample.
 *
 * @param xs values
 * @returns n, p50, p99, max (NaN when empty)
 */
export function spread(xs: number[]): Spread {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] : NaN;
  return { n: s.length, p50: at(0.5), p99: at(0.99), max: s.length ? s[s.length - 1] : NaN };
}

/**
 * Run every scenario on one cluster size.
 *
 * @param options size, profile, datacenters, soak time, seed
 * @returns the figures
 */
export async function runScenarios(options: ScenarioOptions): Promise<ScenarioResult> {
  const log = options.log ?? (() => {});
  const profile = options.profile ?? "lan";
  const c = new SimCluster({
    size: options.size,
    profile,
    interDcMs: options.interDcMs,
    seed: options.seed,
  });
  const wallMs: Record<string, number> = {};
  const phase = async (name: string, fn: () => Promise<void>) => {
    const t0 = performance.now();
    await fn();
    wallMs[name] = Math.round(performance.now() - t0);
    log(`  ${options.size} ${name}: ${wallMs[name]} ms wall, virtual ${c.time.now.toFixed(0)}`);
  };
  const seenBy = (subject: number, what: string, since: number) =>
    c.sightings.filter((s) => s.subject === subject && s.what === what && s.at >= since);
  const result = {} as ScenarioResult;
  try {
    await phase("bootstrap", async () => {
      await c.bootstrap();
      result.converged = c.converged();
    });
    await phase("idle", async () => {
      const b0 = sum(c.net.sentBytes);
      await c.run(10_000);
      result.idleBytesPerSec = (sum(c.net.sentBytes) - b0) / c.live.length / 10;
    });
    await phase("join", async () => {
      const t0 = c.time.now;
      const j = await c.join(0);
      const ok = await c.runUntil(() => c.converged(), 30_000);
      const xs = seenBy(j, "join", t0).map((s) => s.at - t0);
      result.join = { ...spread(xs), everyone: ok && xs.length >= c.live.length - 1 };
    });
    await phase("crash", async () => {
      const xs: number[] = [];
      let everyone = true;
      for (let k = 0; k < (options.crashes ?? 3); k++) {
        const victim = pickLive(c, k);
        const t0 = c.time.now;
        c.crash(victim);
        const ok = await c.runUntil(() => c.converged(), 60_000, 100);
        const seen = seenBy(victim, "failed", t0).map((s) => s.at - t0);
        everyone &&= ok && seen.length >= c.live.length;
        xs.push(...seen);
        await c.run(2000);
      }
      result.crash = { ...spread(xs), everyone };
    });
    await phase("kill", async () => {
      const victim = pickLive(c, 7);
      const t0 = c.time.now;
      c.crash(victim, true);
      const ok = await c.runUntil(() => c.converged(), 30_000);
      const xs = seenBy(victim, "failed", t0).map((s) => s.at - t0);
      result.kill = { ...spread(xs), everyone: ok && xs.length >= c.live.length };
    });
    const soak = options.soakMs ?? 60_000;
    await phase("loss", async () => {
      c.net.loss = 0.1;
      result.loss = await falsePositives(c, soak, () => true);
      c.net.loss = 0;
      result.loss.healed = await c.runUntil(() => c.converged(), 30_000, 500);
    });
    await phase("starved", async () => {
      const live = c.live.filter((i) => i !== 0);
      const count = Math.max(1, Math.round(live.length / 100));
      const starved = new Set(live.slice(live.length - count));
      for (const i of starved) c.starve(i, { runMs: 100, periodMs: 2000 });
      const fp = await falsePositives(c, soak, () => true);
      const healthy = c.sightings.filter((s) =>
        s.what === "failed" && s.at >= c.time.now - soak && !c.crashed[s.subject] &&
        !starved.has(s.subject) && !starved.has(s.observer)
      ).length;
      result.starved = { ...fp, starvedMembers: count, healthyDeclared: healthy };
    });
    const cfg = membershipConfig(profile);
    result.suspicionMinMs = suspicionBounds(cfg, c.live.length).minMs;
  } finally {
    await c.close();
  }
  return {
    ...result,
    size: options.size,
    profile,
    interDcMs: options.interDcMs ?? 0,
    wallMs,
    events: c.time.events,
    heapMB: Math.round(Deno.memoryUsage().heapUsed / 1e6),
  };
}

/** Run `ms` and count the live members declared failed meanwhile. */
async function falsePositives(
  c: SimCluster,
  ms: number,
  counted: (subject: number) => boolean,
): Promise<FalsePositives> {
  const t0 = c.time.now;
  await c.run(ms);
  const wrong = c.sightings.filter((s) =>
    s.what === "failed" && s.at >= t0 && !c.crashed[s.subject] && counted(s.subject)
  );
  // One incident per member and 10 s: the declarations that spread from one timeout.
  const last = new Map<number, number>();
  let incidents = 0;
  for (const s of wrong) {
    const prev = last.get(s.subject);
    if (prev === undefined || s.at - prev > 10_000) incidents++;
    last.set(s.subject, s.at);
  }
  const memberHours = c.live.length * ms / 3_600_000;
  return {
    ms,
    incidents,
    perMemberHour: incidents / memberHours,
    declarations: wrong.length,
    healed: true,
  };
}

/** A live member other than the seed, spread over the ids. */
function pickLive(c: SimCluster, k: number): number {
  const live = c.live.filter((i) => i !== 0);
  return live[(k * 7919 + 13) % live.length];
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
