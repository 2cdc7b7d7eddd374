/**
 * Local health awareness (Lifeguard, "local health multiplier"): a node that misses acks
 * or has to refute suspicions of itself is probably the slow one, so it probes less
 * often, waits longer for acks, and waits longer before it declares a member it suspects
 * dead (its own suspicions may never have reached anyone who could refute them).
 * Successful probes bring it back.
 *
 * @module
 */

/** What one finished probe says about our own health. */
export interface ProbeHealth {
  /** Whether an ack came back, directly or through a helper. */
  acked: boolean;
  /** Helpers asked to ping the target and to nack if they heard nothing. */
  expectedNacks: number;
  /** Nacks received: each proves that we can still talk to a helper. */
  nacks: number;
}

/**
 * The awareness change one probe causes: −1 when acked; after a failure +1 for every
 * helper that did not even nack (we could not reach it either), or +1 when no helper
 * was asked.
 *
 * @param probe the probe's outcome
 * @returns the delta to apply to the score
 */
export function probeAwarenessDelta(probe: ProbeHealth): number {
  if (probe.acked) return -1;
  if (probe.expectedNacks === 0) return 1;
  return Math.max(0, probe.expectedNacks - probe.nacks);
}

/** The awareness change a refutation of a suspicion about ourselves causes. */
export const REFUTE_AWARENESS_DELTA = 1;

/** The local health score, from 0 (healthy) to `max − 1`. */
export class Awareness {
  #max: number;
  #score = 0;

  /**
   * Start healthy (score 0).
   *
   * @param max the multiplier's upper bound (`awarenessMaxMultiplier`)
   */
  constructor(max: number) {
    this.#max = max;
  }

  /** The current score: 0 is healthy. */
  get score(): number {
    return this.#score;
  }

  /**
   * Change the score, clamped to `[0, max − 1]`.
   *
   * @param delta how much to add
   * @returns the new score
   */
  apply(delta: number): number {
    this.#score = Math.min(this.#max - 1, Math.max(0, this.#score + delta));
    return this.#score;
  }

  /**
   * Scale a probe interval or timeout: `ms × (score + 1)`.
   *
   * @param ms the base duration
   * @returns the scaled duration
   */
  scale(ms: number): number {
    return ms * (this.#score + 1);
  }
}
