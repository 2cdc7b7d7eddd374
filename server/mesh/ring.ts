/**
 * The watch ring: which members a server keeps a connection to, as evidence of failure.
 * Each server watches the next few members after it in id order, so every member has
 * that many watchers. Pure functions; the mesh applies them.
 *
 * ```ts
 * import { watchRing } from "./ring.ts";
 * console.assert(watchRing(["1", "2", "3", "4"], "3", 2).join() === "4,1");
 * ```
 *
 * @module
 */

/**
 * The members `self` watches: the `watched` members after it in id order, wrapping
 * around, never itself; fewer when the cluster is smaller.
 *
 * @param members every live member's id, `self` included, sorted
 * @param self our id
 * @param watched how many to watch
 * @returns the ids watched, nearest first
 */
export function watchRing(members: readonly string[], self: string, watched: number): string[] {
  const at = members.indexOf(self);
  const k = Math.min(watched, members.length - 1);
  const ring: string[] = [];
  for (let i = 1; i <= k; i++) ring.push(members[(at + i) % members.length]);
  return ring;
}

/** When the watch ring is next updated: see {@linkcode ringUpdateDelayMs}. */
export interface RingTiming {
  /** Now, in ms. */
  nowMs: number;
  /** When the first change not yet applied to the ring happened, in ms. */
  dueSinceMs: number;
  /** Quiet time after the last change, in ms. */
  settleMs: number;
  /** Longest wait after the first change, in ms. */
  maxWaitMs: number;
}

/**
 * How long to wait before updating the watch ring after a membership change: until
 * membership has been quiet for `settleMs`, or `maxWaitMs` after the first change not yet
 * applied, whichever comes first, so a burst of joins dials once.
 *
 * @param t the times
 * @returns the delay in ms, at least 0
 */
export function ringUpdateDelayMs(t: RingTiming): number {
  return Math.max(0, Math.min(t.settleMs, t.dueSinceMs + t.maxWaitMs - t.nowMs));
}
