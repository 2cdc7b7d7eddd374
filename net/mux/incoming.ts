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
 * The handler's view of a call. Its `up` and `down` are the stream halves themselves, so
 * a call that carries a small message whole makes no stream object and no closure.
 */
export class InCall implements IncomingCall {
  /** Operation name. */
  readonly op: string;
  /** Request body. */
  readonly body: unknown;
  /** Aborted when the caller cancels or the connection drops. */
  readonly signal: AbortSignal;
  /** The upload, when the caller opened one. */
  readonly up: RecvStream | null;
  /** The download, when the caller opened one. */
  readonly down: SendStream | null;

  /**
   * @param op operation name
   * @param body request body
   * @param st the call's state
   */
  constructor(op: string, body: unknown, st: InState) {
    this.op = op;
    this.body = body;
    this.signal = st.abort.signal;
    this.up = st.up;
    this.down = st.down;
  }

  /** The upload's stream, made on first use. */
  get upload(): ReadableStream<Uint8Array> | null {
    return this.up?.stream ?? null;
  }

  /** The download's stream, made on first use. */
  get download(): WritableStream<Uint8Array> | null {
    return this.down?.stream ?? null;
  }
}
