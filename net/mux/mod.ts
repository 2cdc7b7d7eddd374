/**
 * Multiplexed calls and byte streams over one framed connection.
 *
 * A call is a request with one reply. It may carry an upload byte stream (caller →
 * callee) and a download byte stream (callee → caller); each stream has credit-based
 * flow control: a sender has {@linkcode INITIAL_WINDOW_BYTES} of credit and gets more
 * only as the receiver's reader pulls, so a slow reader stalls only its own stream and
 * nothing buffers more than one window. Call ids are odd for the dialer and even for
 * the acceptor, so both sides can call.
 *
 * Messages are msgpack arrays `[tag, id, …]` (`codec.ts`); every message queued while a
 * write is in flight goes into the next frame (`outbox.ts`), so the per-frame MAC is paid
 * once for many. The parts, one concern a file:
 *
 * - `codec.ts`: tags, encoding, shape checks (no socket, no state)
 * - `body.ts`: a stream's content as its ends hold it, whole bytes or a stream
 *   ({@linkcode Inbound}, {@linkcode Outbound}): `up` and `down` on a call
 * - `send_stream.ts`, `recv_stream.ts`: the two halves of a byte stream, with credit
 * - `relay.ts`: a forwarded call's streams, relayed message by message
 * - `outbox.ts`: the outgoing queue and frame coalescing
 * - `keepalive.ts`: pings, round trip, dead connections
 * - `deadlines.ts`: one timer for every call's time limit
 * - `incoming.ts`, `outgoing.ts`: a call as the callee and the caller have it
 * - `mux.ts`: composes them
 *
 * @example A call over a connection
 * ```ts ignore
 * import { Mux } from "./mod.ts";
 *
 * declare const mux: Mux; // made by net/conn.ts for each connection
 * const reply = await mux.request("ping", { hello: 1 }, { timeoutMs: 1000 });
 * ```
 *
 * @module
 */

export type { Body, Inbound, Outbound } from "./body.ts";
export { INITIAL_WINDOW_BYTES, Tag } from "./codec.ts";
export { Mux } from "./mux.ts";
export type {
  CallOptions,
  Handler,
  IncomingCall,
  MuxOptions,
  MuxStats,
  OutgoingCall,
} from "./types.ts";
