/**
 * Suspicion timeouts (Lifeguard, "dynamic suspicion"): a suspected member is declared
 * dead after a timeout that starts at a maximum and shrinks towards a minimum as other
 * members independently confirm the suspicion. A lone, possibly unhealthy, accuser thus
 * waits long enough for the accused to refute, while a real failure seen by many is
 * declared quickly.
 *
 * The math is plain functions; {@linkcode Suspicion} only holds the timer.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { MembershipConfig } from "./config.ts";

/** The bounds a new suspicion starts with. */
export interface SuspicionBounds {
  /** Timeout once `k` confirmations arrived, in ms. */
  minMs: number;
  /** Timeout without any confirmation, in ms. */
  maxMs: number;
  /** Confirmations that bring the timeout down to `minMs`. */
  k: number;
}

/**
 * The bounds for a suspicion in a cluster of `n` live members:
 * `minMs = suspicionMult × max(1, log10(n)) × probeIntervalMs`,
 * `maxMs = suspicionMaxTimeoutMult × minMs`, and `k = suspicionConfirmations` expected
 * confirmations, or 0 when fewer than `k` others (not us, not the suspect) could confirm.
 *
 * @param config the multipliers and the probe interval
 * @param n live members, ourselves included
 * @returns the bounds
 */
export function suspicionBounds(
  config: Pick<
    MembershipConfig,
    "suspicionMult" | "suspicionConfirmations" | "suspicionMaxTimeoutMult" | "probeIntervalMs"
  >,
  n: number,
): SuspicionBounds {
  const nodeScale = Math.max(1, Math.log10(Math.max(1, n)));
  const minMs = Math.floor(config.suspicionMult * nodeScale * config.probeIntervalMs);
  const wanted = config.suspicionConfirmations;
  return {
    minMs,
    maxMs: config.suspicionMaxTimeoutMult * minMs,
    k: n - 2 < wanted ? 0 : wanted,
  };
}

/**
 * Time left before a suspect is declared dead. The total timeout falls from `maxMs` with
 * no confirmation to `minMs` at `k` confirmations, along
 * `maxMs − (maxMs − minMs) × log(confirmations + 1) / log(k + 1)`, never below `minMs`.
 *
 * @param confirmations independent confirmations so far
 * @param elapsedMs time since the suspicion started
 * @param bounds `minMs`, `maxMs`, `k`
 * @returns the remaining time in ms, possibly negative (fire now)
 */
export function remainingSuspicionMs(
  confirmations: number,
  elapsedMs: number,
  bounds: SuspicionBounds,
): number {
  const { minMs, maxMs, k } = bounds;
  // With k = 0 nobody is expected to confirm: the fraction is infinite, the timeout minMs.
  const frac = Math.log(confirmations + 1) / Math.log(k + 1);
  const raw = Math.floor(maxMs - frac * (maxMs - minMs));
  const timeout = Number.isNaN(raw) || raw < minMs ? minMs : raw;
  return timeout - elapsedMs;
}

/** Options of {@linkcode Suspicion}. */
export interface SuspicionOptions {
  /** The member that raised it; its own gossip coming back is not a confirmation. */
  from: string;
  /** Timeout bounds. */
  bounds: SuspicionBounds;
  /** The timers. */
  clock: Clock;
  /** Called once when the timeout expires, with the confirmations seen. */
  onTimeout(confirmations: number): void;
  /**
   * A timer firing more than this late, in ms, means we were starved: the suspicion is not
   * ended then but re-armed for its shortest timeout, so refutations waiting unread in our
   * socket are read first. @default {Infinity}
   */
  stallMs?: number;
  /** Told each time the timer fired too late (see `stallMs`). */
  onStall?(): void;
}

/** One running suspicion timer that confirmations accelerate. */
export class Suspicion {
  #o: SuspicionOptions;
  #from = new Set<string>();
  #start: number;
  #timer: number | undefined;
  #done = false;

  /**
   * Start the timer: at the maximum, or at the minimum when `k` is 0.
   *
   * @param options accuser, bounds, clock, callback
   */
  constructor(options: SuspicionOptions) {
    this.#o = options;
    this.#from.add(options.from);
    this.#start = options.clock.now();
    // Without expected confirmations the minimum applies from the start.
    this.#arm(remainingSuspicionMs(0, 0, options.bounds));
  }

  /** Independent confirmations so far (the accuser excluded). */
  get confirmations(): number {
    return this.#from.size - 1;
  }

  /**
   * Another member also suspects: shorten the timeout.
   *
   * @param from the confirming member
   * @returns whether this was new (not a duplicate, and the minimum not yet reached)
   */
  confirm(from: string): boolean {
    // Guards: finished, enough confirmations already, or a duplicate.
    if (this.#done || this.confirmations >= this.#o.bounds.k || this.#from.has(from)) {
      return false;
    }
    this.#from.add(from);
    const clock = this.#o.clock;
    this.#arm(remainingSuspicionMs(this.confirmations, clock.now() - this.#start, this.#o.bounds));
    return true;
  }

  /** Stop the timer without firing (refuted, or the member is gone). */
  cancel(): void {
    this.#done = true;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
  }

  #arm(ms: number): void {
    const clock = this.#o.clock;
    if (this.#timer !== undefined) clock.clearTimeout(this.#timer);
    const due = clock.now() + Math.max(0, ms);
    this.#timer = clock.setTimeout(() => {
      if (this.#done) return;
      if (clock.now() - due > (this.#o.stallMs ?? Infinity)) {
        this.#o.onStall?.();
        this.#arm(this.#o.bounds.minMs);
        return;
      }
      this.#done = true;
      this.#o.onTimeout(this.confirmations);
    }, Math.max(0, ms));
  }
}

/** What {@linkcode Suspicions} needs. */
export interface SuspicionsOptions {
  /** Suspicion multipliers and the probe interval. */
  config: Pick<
    MembershipConfig,
    "suspicionMult" | "suspicionConfirmations" | "suspicionMaxTimeoutMult" | "probeIntervalMs"
  >;
  /** The timers. */
  clock: Clock;
  /**
   * Our local health multiplier (awareness score + 1): an unhealthy node waits that much
   * longer before it declares a member it suspects dead, since its own accusation may
   * never have reached anyone who could refute it. @default {() => 1}
   */
  healthMultiplier?(): number;
  /** See {@linkcode SuspicionOptions.stallMs}. @default {Infinity} */
  stallMs?: number;
  /** Told each time a suspicion's timer fired more than `stallMs` late. */
  onStall?(): void;
}

/** The running suspicions, at most one per member. */
export class Suspicions {
  #o: SuspicionsOptions;
  #running = new Map<string, Suspicion>();

  /**
   * Start with none.
   *
   * @param options config, clock, health multiplier
   */
  constructor(options: SuspicionsOptions) {
    this.#o = options;
  }

  /** Suspicions running. */
  get size(): number {
    return this.#running.size;
  }

  /**
   * Suspect a member (replacing any running suspicion of it).
   *
   * @param id the member
   * @param options the accuser, live members `n`, what to do when the time is up, and a
   *   multiplier of the timeouts besides our health (flap damping; default 1)
   */
  start(id: string, options: { from: string; n: number; mult?: number; onTimeout(): void }): void {
    this.end(id);
    const b = suspicionBounds(this.#o.config, options.n);
    const mult = (this.#o.healthMultiplier?.() ?? 1) * (options.mult ?? 1);
    const bounds = { minMs: b.minMs * mult, maxMs: b.maxMs * mult, k: b.k };
    const onTimeout = () => {
      this.#running.delete(id);
      options.onTimeout();
    };
    this.#running.set(
      id,
      new Suspicion({
        from: options.from,
        bounds,
        clock: this.#o.clock,
        onTimeout,
        stallMs: this.#o.stallMs,
        onStall: this.#o.onStall,
      }),
    );
  }

  /**
   * Another member confirms a running suspicion.
   *
   * @param id the member
   * @param from the confirming member
   * @returns whether the confirmation was new (worth gossiping on)
   */
  confirm(id: string, from: string): boolean {
    return this.#running.get(id)?.confirm(from) ?? false;
  }

  /**
   * Stop suspecting a member (refuted, dead or left).
   *
   * @param id the member
   */
  end(id: string): void {
    this.#running.get(id)?.cancel();
    this.#running.delete(id);
  }

  /** Stop every timer. */
  close(): void {
    for (const s of this.#running.values()) s.cancel();
    this.#running.clear();
  }
}
