/**
 * The subscription kinds on the wire (`@join`, `@leave`).
 *
 * - `recv`: the event (the server's path and a newline) on the download; the receiver
 *   ends its upload to acknowledge it → {@linkcode SubscriptionReply}.
 *
 * @module
 */

/** The kind name of a subscription to servers joining. */
export const JOIN_KIND = "@join";
/** The kind name of a subscription to servers leaving or failing. */
export const LEAVE_KIND = "@leave";

/** A subscription's own operations. */
export const SubscriptionOp = {
  /** Receive one event, acknowledged as a channel's `recv` is. */
  RECV: "recv",
} as const;

/** A subscription's state, as `peek` returns it. */
export interface SubscriptionState {
  /** `join` or `leave`. */
  Source: "join" | "leave";
  /** Events waiting. */
  Pending: number;
  /** Scrubbed. */
  Closed: boolean;
}

/** What `recv` replies after the event's bytes. */
export interface SubscriptionReply {
  /** Events dropped since the previous `recv` (queue full). */
  Dropped: number;
}
