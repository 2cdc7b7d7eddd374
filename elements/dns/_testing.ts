/**
 * What the DNS element's tests share: the shared assertions of `tests/_assert.ts` and the
 * default UDP reply options. Private to the folder; not published.
 *
 * @module
 */

import type { RespondOptions } from "./message.ts";

export { assertEquals } from "../../tests/_assert.ts";

/** Replying over UDP with the element's default limits, turn 0. */
export const UDP: RespondOptions = Object.freeze({
  transport: "udp",
  maxUdpPayloadBytes: 4096,
  maxCnameChain: 8,
  turn: 0,
});
