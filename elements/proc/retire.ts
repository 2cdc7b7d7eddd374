/**
 * How long a process that scrubs itself (`Scrub: true`) stays reachable after it exits.
 *
 * The element leaves the namespace the moment its process exits (`ls` and `peek` no
 * longer show it), but its own operations keep working at its path: `wait` replies the
 * final state, `stdout` and `stderr` the retained output, for
 * {@linkcode RETIRED_GRACE_MS} after the exit and then until the last attached reader is
 * done. So a caller that started a fast command never loses its output or its exit status
 * (`mkproc --scrub`, then `stdout`, then `wait`). Making a new element at the path, or
 * scrubbing the path, ends it at once; at most {@linkcode MAX_RETIRED} are kept per
 * server, the oldest released first.
 *
 * @module
 */

import type { Stdio } from "../stdio.ts";

/** How long, in ms, an exited `Scrub: true` process stays reachable at its path: 30 s. */
export const RETIRED_GRACE_MS = 30_000;

/** Most exited `Scrub: true` processes a server keeps reachable; the oldest go first. */
export const MAX_RETIRED = 1024;

/** Release functions of the retired processes, oldest first. */
const retired = new Set<() => void>();

/**
 * How long an exited process stays reachable: until the grace period has passed and no
 * reader is attached to its output, or until more than {@linkcode MAX_RETIRED} are kept.
 *
 * @param stdio the process's streams
 * @param graceMs the grace period
 * @returns resolves when the process need no longer be reachable
 */
export function retirement(stdio: Stdio, graceMs: number = RETIRED_GRACE_MS): Promise<void> {
  return new Promise<void>((resolve) => {
    const release = () => {
      if (!retired.delete(release)) return;
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => void stdio.idle().then(release), graceMs);
    Deno.unrefTimer(timer); // the server does not stay up for it
    retired.add(release);
    if (retired.size > MAX_RETIRED) retired.values().next().value?.();
  });
}
