/**
 * Checks of the arguments every call takes.
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";

/** The longest time limit a timer can hold, in ms (2³¹ − 1, about 24.8 days). */
export const MAX_TIMEOUT_MS = 0x7fff_ffff;

/**
 * A time limit must be a whole or fractional number of ms from 0 (none) to
 * {@linkcode MAX_TIMEOUT_MS}: not NaN, negative, infinite or larger (a timer would fire
 * at once).
 *
 * @param ms the limit given, if any
 * @param what the call, for the message
 * @throws {CircuitError} `bad request` otherwise
 */
export function checkTimeout(ms: number | undefined, what: string): void {
  if (ms !== undefined && !(typeof ms === "number" && ms >= 0 && ms <= MAX_TIMEOUT_MS)) {
    throw new CircuitError(
      "bad request",
      `${what}: timeoutMs must be a number of ms from 0 (none) to ${MAX_TIMEOUT_MS}, got ${ms}`,
    );
  }
}
