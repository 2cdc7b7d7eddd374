/**
 * What the DNS element's tests share (we cannot import `@std/assert`). Private to the
 * folder; not published.
 *
 * @module
 */

import type { RespondOptions } from "./message.ts";

/**
 * Fail unless the values are equal as JSON.
 *
 * @param actual what we got
 * @param expected what we want
 * @param msg context
 * @throws {Error} showing both values
 */
export function eq(actual: unknown, expected: unknown, msg = ""): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${msg ? msg + ": " : ""}expected ${e}, got ${a}`);
}

/** Replying over UDP with the element's default limits, turn 0. */
export const UDP: RespondOptions = Object.freeze({
  transport: "udp",
  maxUdpPayloadBytes: 4096,
  maxCnameChain: 8,
  turn: 0,
});
