/**
 * A call as its caller has it: its state in the mux, and the {@linkcode OutgoingCall} the
 * caller gets.
 *
 * @module
 */

import type { CircuitError } from "../errors.ts";
import type { Due } from "./deadlines.ts";
import type { RecvStream } from "./recv_stream.ts";
import type { SendStream } from "./send_stream.ts";
import type { OutgoingCall } from "./types.ts";

/** A call this side started, until it is settled and its streams are over. */
export interface OutState extends Due {
  /** Settles the reply. */
  resolve(v: unknown): void;
  /** Fails the reply. */
  reject(e: CircuitError): void;
  /** Whether the reply has settled. */
  settled: boolean;
  /** The upload, when asked for. */
  up: SendStream | null;
  /** The download, when asked for. */
  down: RecvStream | null;
  /** Stops listening to the caller's signal. */
  unlisten(): void;
  /** The timeout's error. */
  timeout?: () => CircuitError;
  /** What the call is, when the caller said (`CallOptions.label`). */
  label?: string;
}

/**
 * The caller's view of a started call. Its `up` and `down` are the stream halves
 * themselves. `whole` bytes given for the upload are sent as the whole upload at once
 * (see {@linkcode SendStream.send}); the caller then gets no upload.
 */
export class OutCall implements OutgoingCall {
  /** The reply. */
  readonly result: Promise<unknown>;
  /** The upload, when asked for and not given whole. */
  readonly up: SendStream | null;
  /** The download, when asked for. */
  readonly down: RecvStream | null;
  #st: OutState | null;

  /**
   * @param result the reply
   * @param st the call's state; null when it failed at once
   * @param whole the whole upload, or null
   */
  constructor(result: Promise<unknown>, st: OutState | null, whole: Uint8Array | null) {
    this.result = result;
    this.#st = st;
    if (whole && st?.up) st.up.send(whole).catch(() => {}); // the reply says what failed
    this.up = whole ? null : st?.up ?? null;
    this.down = st?.down ?? null;
  }

  /** The upload's stream, made on first use. */
  get upload(): WritableStream<Uint8Array> | null {
    return this.up?.stream ?? null;
  }

  /** The download's stream, made on first use. */
  get download(): ReadableStream<Uint8Array> | null {
    return this.down?.stream ?? null;
  }

  /** See {@linkcode OutgoingCall.hold}. */
  hold(): void {
    const st = this.#st;
    if (!st) return;
    st.unlisten();
    st.deadline = Infinity; // the shared deadline timer skips it from now on
  }
}
