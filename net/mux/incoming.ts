/**
 * A call as its callee has it: its state in the mux, and the {@linkcode IncomingCall} the
 * handler gets.
 *
 * @module
 */

import type { RecvStream } from "./recv_stream.ts";
import type { SendStream } from "./send_stream.ts";
import type { IncomingCall } from "./types.ts";

/** A call this side serves, until it is replied to and its streams are over. */
export interface InState {
  /** Aborted when the caller cancels or the connection drops. */
  abort: AbortController;
  /** The upload, when the caller opened one. */
  up: RecvStream | null;
  /** The download, when the caller opened one. */
  down: SendStream | null;
  /** Whether the reply has been sent. */
  replied: boolean;
}

/**
 * The handler's view of a call.
 *
 * @param op operation name
 * @param body request body
 * @param st the call's state
 * @returns the call
 */
export function incomingCall(op: string, body: unknown, st: InState): IncomingCall {
  const up = st.up, down = st.down;
  return {
    op,
    body,
    signal: st.abort.signal,
    // Both made on first use: takeUpload, uploadEnded and sendDownload need neither.
    get upload() {
      return up?.readable ?? null;
    },
    get download() {
      return down?.writable ?? null;
    },
    takeUpload: () => up?.takeWhole() ?? null,
    sendDownload: (bytes) => down?.sendWhole(bytes) ?? false,
    uploadEnded: () => up ? up.emptyEnd() : Promise.resolve(false),
  };
}
