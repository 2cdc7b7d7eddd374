/**
 * Checks of the arguments every call takes.
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";

/**
 * A time limit must be a number of ms ≥ 0 (0: none), not NaN or negative.
 *
 * @param ms the limit given, if any
 * @param what the call, for the message
 * @throws {CircuitError} `bad request` otherwise
 */
export function checkTimeout(ms: number | undefined, what: string): void {
  if (ms !== undefined && !(typeof ms === "number" && ms >= 0)) {
    throw new CircuitError("bad request", `${what}: timeoutMs must be a number ≥ 0, got ${ms}`);
  }
}
