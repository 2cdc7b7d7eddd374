/**
 * Virtual time for the membership simulator: one event queue (a binary heap) that
 * stands in for `setTimeout`, `clearTimeout` and `Date.now` while a simulation runs, so
 * the real `net/membership` code, which takes its timers from the system clock, runs
 * thousands of members in one process at the speed of its own work, not of the wall
 * clock.
 *
 * Every event belongs to a member (or to none): a timer set while a member's code runs
 * belongs to it, so a starved member's timers can be held back. After each event the
 * promise callbacks it released run before the next event, at the same virtual time.
 *
 * @module
 */

/** An event owner: a member index, or -1 for the simulator itself. */
export type Owner = number;

interface Event {
  at: number;
  /** 0: timers, 1: packets (a starved member's overdue timers fire before its reads). */
  phase: number;
  seq: number;
  owner: Owner;
  handle: number;
  fn: () => void;
}

/** Decides when a member may run an event due at `at` (a starved member runs late). */
export type Gate = (owner: Owner, at: number) => number;

/** Options of {@linkcode VirtualTime}. */
export interface VirtualTimeOptions {
  /** The virtual epoch: `Date.now()` at virtual time 0. @default {1_700_000_000_000} */
  epochMs?: number;
  /** Microtask turns let run after each event. @default {16} */
  drainTurns?: number;
}

/** Saved globals, to put back. */
interface Saved {
  setTimeout: typeof globalThis.setTimeout;
  clearTimeout: typeof globalThis.clearTimeout;
  dateNow: typeof Date.now;
}

/** An event queue that replaces the global timers while installed. */
export class VirtualTime {
  #now = 0;
  #seq = 0;
  #nextHandle = 1;
  #heap: Event[] = [];
  #live = new Map<number, Event>();
  #epoch: number;
  #drainTurns: number;
  #saved: Saved | undefined;
  /** The member whose code runs now (timers it sets are its own). */
  current: Owner = -1;
  /** When set, consulted for each event of a member before it runs. */
  gate: Gate | undefined;
  /** Events run so far. */
  events = 0;

  /**
   * Make a stopped queue at virtual time 0.
   *
   * @param options epoch and microtask turns per event
   */
  constructor(options: VirtualTimeOptions = {}) {
    this.#epoch = options.epochMs ?? 1_700_000_000_000;
    this.#drainTurns = options.drainTurns ?? 16;
  }

  /** Virtual time since start, in ms. */
  get now(): number {
    return this.#now;
  }

  /** Events waiting. */
  get pending(): number {
    return this.#live.size;
  }

  /**
   * Schedule `fn` at `now + ms` for an owner.
   *
   * @param fn what to run
   * @param ms delay
   * @param owner whose event it is (default: the member running now)
   * @param phase 0 for a timer, 1 for a packet
   * @returns a handle for {@linkcode VirtualTime.cancel}
   */
  schedule(fn: () => void, ms: number, owner: Owner = this.current, phase = 0): number {
    const handle = this.#nextHandle++;
    const e: Event = {
      at: this.#now + Math.max(0, ms || 0),
      phase,
      seq: this.#seq++,
      owner,
      handle,
      fn,
    };
    this.#live.set(handle, e);
    this.#push(e);
    return handle;
  }

  /**
   * Cancel an event; unknown handles are ignored.
   *
   * @param handle from {@linkcode VirtualTime.schedule}
   */
  cancel(handle: number): void {
    this.#live.delete(handle);
  }

  /** Replace `setTimeout`, `clearTimeout` and `Date.now` with this queue's. */
  install(): void {
    if (this.#saved) return;
    this.#saved = {
      setTimeout: globalThis.setTimeout,
      clearTimeout: globalThis.clearTimeout,
      dateNow: Date.now,
    };
    const g = globalThis as unknown as Record<string, unknown>;
    g.setTimeout = (fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) =>
      this.schedule(() => fn(...args), ms ?? 0);
    g.clearTimeout = (handle?: number) => {
      if (typeof handle === "number") this.cancel(handle);
    };
    Date.now = () => Math.floor(this.#epoch + this.#now);
  }

  /** Put the real timers and clock back. */
  uninstall(): void {
    const s = this.#saved;
    if (!s) return;
    const g = globalThis as unknown as Record<string, unknown>;
    g.setTimeout = s.setTimeout;
    g.clearTimeout = s.clearTimeout;
    Date.now = s.dateNow;
    this.#saved = undefined;
  }

  /**
   * Run events until virtual time `until` (inclusive), then stop there.
   *
   * @param until virtual time to reach, in ms
   */
  async runUntil(until: number): Promise<void> {
    for (;;) {
      const e = this.#heap[0];
      if (!e || e.at > until) break;
      this.#pop();
      if (this.#live.get(e.handle) !== e) continue;
      if (this.gate && e.owner >= 0) {
        const at = this.gate(e.owner, e.at);
        if (at > e.at) {
          e.at = at;
          e.seq = this.#seq++;
          this.#push(e);
          continue;
        }
      }
      this.#live.delete(e.handle);
      this.#now = e.at;
      this.current = e.owner;
      this.events++;
      e.fn();
      for (let i = 0; i < this.#drainTurns; i++) await undefined;
      this.current = -1;
    }
    this.#now = Math.max(this.#now, until);
  }

  #less(a: Event, b: Event): boolean {
    return a.at < b.at || (a.at === b.at && (a.phase < b.phase ||
      (a.phase === b.phase && a.seq < b.seq)));
  }

  #push(e: Event): void {
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < h.length && this.#less(h[l], h[m])) m = l;
      if (r < h.length && this.#less(h[r], h[m])) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m], h[i]];
      i = m;
    }
  }
}
