/**
 * A call as its caller has it: its state in the mux, and the {@linkcode OutgoingCall} the
 * caller gets.
 *
 * @module
 */

import { CircuitError } from "../errors.ts";
import { NO_BYTES } from "./codec.ts";
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
 * The caller's view of a started call. `whole` bytes are the whole upload: one DATA and
 * the END when they fit one chunk within the credit, else written through the stream with
 * flow control; either way the caller gets no upload writer.
 *
 * @param result the reply
 * @param st the call's state; null when it failed at once
 * @param whole the whole upload, or null
 * @returns the call
 */
export function outgoingCall(
  result: Promise<unknown>,
  st: OutState | null,
  whole: Uint8Array | null,
): OutgoingCall {
  if (!st) return { result, upload: null, download: null };
  if (whole && st.up && !st.up.sendWhole(whole)) {
    const w = st.up.writable.getWriter();
    w.write(whole).catch(() => {});
    w.close().catch(() => {});
  }
  const up = whole ? null : st.up, down = st.down;
  return {
    result,
    // Both made on first use: downloadWhole and endUpload need neither.
    get upload() {
      return up?.writable ?? null;
    },
    get download() {
      return down?.readable ?? null;
    },
    downloadWhole: () => down?.whole() ?? null,
    endUpload: () => up?.sendWhole(NO_BYTES) ?? false,
    resetUpload: () => up?.reset(new CircuitError("aborted", "The caller gave up its upload")),
    holdToEnd: () => {
      st.unlisten();
      st.deadline = Infinity; // the shared deadline timer skips it from now on
    },
  };
}
