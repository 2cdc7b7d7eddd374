/**
 * What every part of the membership section shares: its title, its sizes, the serf ports
 * and discovery group, the poll intervals that are every timing's resolution, and small
 * helpers.
 *
 * @module
 */

import { run } from "../../_cluster.ts";

/** The section's title (and every figure's `section`). */
export const TITLE = "10. Membership (namespaces, beside serf)";

/** Bytes per MiB. */
export const MiB = 1024 * 1024;
/** The port every serf agent gossips on. */
export const SERF_PORT = 7946;
/** The port of every serf agent's RPC. */
export const SERF_RPC_PORT = 7373;
/** The multicast group circuit's `--discover` runs use. */
export const GROUP = "228.8.8.8:7711";

/** The section's sizes and durations; `--quick` shrinks them. */
export type Params = ReturnType<typeof params>;

/**
 * The section's sizes and durations.
 *
 * @param quick `--quick`
 * @returns cluster sizes, idle seconds, runs per figure, the detection LAN's size and
 *   trials, and the soak's seconds
 */
export function params(quick: boolean) {
  return quick
    ? { sizes: [10, 25], idleS: 5, reps: 1, detectHosts: 10, kills: 2, stops: 2, soakS: 30 }
    : { sizes: [10, 25, 50], idleS: 20, reps: 3, detectHosts: 10, kills: 3, stops: 3, soakS: 300 };
}

/** Poll interval while an answer is awaited, in ms: the resolution of every timing. */
export const POLL_MS = 20;
/** Poll interval while members are still starting (spawn-at-once runs), in ms. */
export const SLOW_POLL_MS = 100;

/** Wait `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An error's message. */
export function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Run a command; throw with its stderr when it fails. */
export async function sh(cmd: string, args: string[]): Promise<void> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr.trim()}`);
}

/** The median (of an even count, the mean of the middle two). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
