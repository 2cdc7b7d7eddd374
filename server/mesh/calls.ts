/**
 * Connections dialed for calls (not to watch a member) are closed once they have been
 * idle: nobody asked for one in `idleMs` and no call is in flight on it. (Without a
 * limit, one recursive `ls /...` left every server connected to every other for as long
 * as both lived.)
 *
 * @module
 */

import type { Clock } from "../../net/clock.ts";

/** What the idle sweep needs. */
export interface CallConnectionsOptions {
  /** Timers. */
  clock: Clock;
  /** How long an unused connection stays open, in ms; swept every `idleMs / 2`. */
  idleMs: number;
  /** Whether the connection to a member carries a call now. */
  inUse(id: string): boolean;
  /** The member's connection is no longer needed for calls. */
  release(id: string): void;
}

/** Members dialed for calls, with when a call last asked for the connection. */
export class CallConnections {
  #o: CallConnectionsOptions;
  #called = new Map<string, number>();
  #timer: number | undefined;
  #closed = false;

  /** @param options timers, the idle time, what to do with an idle connection */
  constructor(options: CallConnectionsOptions) {
    this.#o = options;
  }

  /**
   * A call asked for the connection to a member.
   *
   * @param id the member
   */
  used(id: string): void {
    this.#called.set(id, this.#o.clock.now());
    this.#arm();
  }

  /**
   * Whether calls keep the connection to a member.
   *
   * @param id the member
   * @returns true until it has been idle
   */
  has(id: string): boolean {
    return this.#called.has(id);
  }

  /**
   * Forget a member (it left).
   *
   * @param id the member
   */
  forget(id: string): void {
    this.#called.delete(id);
  }

  /** Stop sweeping. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Sweep later, unless a sweep is due. */
  #arm(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#sweep();
    }, Math.max(1, this.#o.idleMs / 2));
  }

  /** Release connections nobody asked for in `idleMs` that carry no call now. */
  #sweep(): void {
    if (this.#closed) return;
    const cutoff = this.#o.clock.now() - this.#o.idleMs;
    for (const [id, at] of this.#called) {
      if (at > cutoff || this.#o.inUse(id)) continue;
      this.#called.delete(id);
      this.#o.release(id);
    }
    if (this.#called.size > 0) this.#arm();
  }
}
