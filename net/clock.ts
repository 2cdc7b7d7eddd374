/**
 * Time, abstracted so tests can drive timers: the system clock in production, a manual
 * clock in unit tests. The membership layer (`net/membership/`) and the server's mesh
 * (`server/mesh/`) take one as an option.
 *
 * ```ts
 * import { ManualClock } from "./clock.ts";
 * const clock = new ManualClock();
 * let fired = false;
 * clock.setTimeout(() => (fired = true), 100);
 * await clock.advance(100);
 * console.assert(fired);
 * ```
 *
 * @module
 */

/** The timers a component uses: `now`, `setTimeout` and `clearTimeout`. */
export interface Clock {
  /** Now, in ms (only differences matter). */
  now(): number;
  /** Call `fn` once after `ms`; returns a handle for {@linkcode Clock.clearTimeout}. */
  setTimeout(fn: () => void, ms: number): number;
  /** Cancel a timer; unknown or fired handles are ignored. */
  clearTimeout(handle: number): void;
}

/** The real clock. */
export const SYSTEM_CLOCK: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (fn: () => void, ms: number) => setTimeout(fn, Math.max(0, ms)) as unknown as number,
  clearTimeout: (handle: number) => clearTimeout(handle),
});

/**
 * The real clock for housekeeping: its timers do not keep the process alive (they are
 * unref'd), so a component that only tidies up never holds a stopping process open.
 */
export const HOUSEKEEPING_CLOCK: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (fn: () => void, ms: number) => {
    const t = setTimeout(fn, Math.max(0, ms)) as unknown as number;
    Deno.unrefTimer(t);
    return t;
  },
  clearTimeout: (handle: number) => clearTimeout(handle),
});

interface ManualTimer {
  at: number;
  order: number;
  fn: () => void;
}

/** A clock that only moves when told to; timers fire in due order. */
export class ManualClock implements Clock {
  #now: number;
  #next = 1;
  #timers = new Map<number, ManualTimer>();

  /**
   * Make a clock stopped at `startMs`.
   *
   * @param startMs the initial time
   */
  constructor(startMs = 0) {
    this.#now = startMs;
  }

  /** Timers still pending. */
  get pending(): number {
    return this.#timers.size;
  }

  /**
   * The current time.
   *
   * @returns ms
   */
  now(): number {
    return this.#now;
  }

  /**
   * Call `fn` once the clock has been advanced by `ms`.
   *
   * @param fn what to call
   * @param ms delay
   * @returns the handle
   */
  setTimeout(fn: () => void, ms: number): number {
    const handle = this.#next++;
    this.#timers.set(handle, { at: this.#now + Math.max(0, ms), order: handle, fn });
    return handle;
  }

  /**
   * Cancel a timer.
   *
   * @param handle the timer to cancel
   */
  clearTimeout(handle: number): void {
    this.#timers.delete(handle);
  }

  /**
   * Move time forward, firing each due timer in order and letting promise callbacks run
   * after each one (so `await`-based code reacts as it would in real time).
   *
   * @param ms how far to move
   */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      await flush();
      const due = [...this.#timers].filter(([, t]) => t.at <= end)
        .sort(([, a], [, b]) => a.at - b.at || a.order - b.order)[0];
      if (!due) break;
      this.#timers.delete(due[0]);
      this.#now = due[1].at;
      due[1].fn();
    }
    this.#now = end;
    await flush();
  }
}

/**
 * Let pending promise callbacks run (a few turns of the microtask queue; no I/O).
 *
 * @returns once they have run
 */
export async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}
