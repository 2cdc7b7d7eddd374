/**
 * The join at start (`circuit start -j SEED …`): try every seed, and until one answers
 * try again with backoff and jitter (as serf's `retry_join`), for as long as the server
 * runs. Each seed's failure is logged once, not per attempt. When 100 servers start at
 * once the seed is busy: giving up after one timed-out dial left dozens of servers alone.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { Clock } from "../../net/clock.ts";

/** First wait between two rounds of attempts, in ms; it doubles up to the maximum. */
export const JOIN_RETRY_FIRST_MS = 1000;
/** Longest wait between two rounds of attempts, in ms (±50 % jitter on every wait). */
export const JOIN_RETRY_MAX_MS = 30_000;
/**
 * How long `circuit start -j` waits for the first round before it prints its URL, in ms;
 * the joiner goes on in the background.
 */
export const JOIN_FIRST_WAIT_MS = 3000;

/** What the joiner needs. */
export interface JoinerOptions {
  /** Seeds: member URLs or `HOST:PORT` addresses. */
  seeds: readonly string[];
  /** Join through one seed; resolves once merged with its cluster. */
  join(seed: string, signal: AbortSignal): Promise<void>;
  /** Time limit of one attempt, in ms. */
  attemptTimeoutMs: number;
  /** Timers. */
  clock: Clock;
  /** Where failures and the eventual join are logged. */
  log: Logger;
  /** First and longest wait between rounds, in ms. */
  retry?: { firstMs: number; maxMs: number };
  /**
   * Whether an error will not go away by retrying (a key mismatch, a malformed seed): when
   * every seed of the first round fails so, the joiner stops and keeps the first as
   * `error`; later rounds always go on.
   * @default {() => false}
   */
  permanent?(err: unknown): boolean;
}

/** Joins through seeds until one answers or it is closed. */
export class Joiner {
  #o: JoinerOptions;
  #closed = false;
  #ctl = new AbortController();
  #timer: number | undefined;
  #wake: (() => void) | undefined;
  #failed = new Set<string>();
  #firstRound: Promise<boolean>;
  #done: Promise<boolean>;
  /** Rounds of attempts made. */
  rounds = 0;
  /** Why it stopped: every seed failed with a permanent error (see `permanent`). */
  error: unknown = undefined;

  /**
   * Start joining at once.
   *
   * @param options seeds, how to join one, timings
   */
  constructor(options: JoinerOptions) {
    this.#o = options;
    let first!: (ok: boolean) => void;
    this.#firstRound = new Promise((resolve) => first = resolve);
    this.#done = this.#run(first);
  }

  /** Resolves after the first round: true when it joined. */
  get firstRound(): Promise<boolean> {
    return this.#firstRound;
  }

  /** Resolves true once joined, false when closed first. */
  get done(): Promise<boolean> {
    return this.#done;
  }

  /** Stop retrying; an attempt under way is aborted. */
  close(): void {
    this.#closed = true;
    this.#ctl.abort();
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#wake?.();
  }

  async #run(first: (ok: boolean) => void): Promise<boolean> {
    const { firstMs, maxMs } = this.#o.retry ??
      { firstMs: JOIN_RETRY_FIRST_MS, maxMs: JOIN_RETRY_MAX_MS };
    for (let wait = firstMs; !this.#closed; wait = Math.min(wait * 2, maxMs)) {
      const ok = await this.#round();
      if (this.rounds === 1) first(ok);
      if (ok) return true;
      if (this.#closed) break;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        this.#timer = this.#o.clock.setTimeout(resolve, wait * (0.5 + Math.random()));
      });
      this.#timer = this.#wake = undefined;
    }
    first(false);
    return false;
  }

  /** One attempt through every seed at once; true when any answered. */
  async #round(): Promise<boolean> {
    this.rounds++;
    const { seeds, log } = this.#o;
    const results = await Promise.allSettled(seeds.map(async (seed) => {
      const signal = AbortSignal.any([
        this.#ctl.signal,
        AbortSignal.timeout(this.#o.attemptTimeoutMs),
      ]);
      try {
        await this.#o.join(seed, signal);
      } catch (err) {
        if (!this.#closed && !this.#failed.has(seed)) {
          this.#failed.add(seed);
          log.warn(`joining ${seed} failed, retrying until it answers: ${(err as Error).message}`);
        }
        throw err;
      }
    }));
    const ok = results.some((r) => r.status === "fulfilled");
    const why = results.map((r) => r.status === "rejected" ? r.reason : undefined);
    // Only the first round: a refusal that comes later (a loaded seed) is retried.
    if (!ok && !this.#closed && this.rounds === 1 && why.every((e) => this.#o.permanent?.(e))) {
      this.error = why[0];
      this.#closed = true;
    }
    if (ok && this.#failed.size > 0) {
      log.info(`joined through ${seeds.join(", ")} after ${this.rounds} attempts`);
    }
    return ok;
  }
}
