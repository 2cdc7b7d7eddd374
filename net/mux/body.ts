/**
 * A stream's bytes as its two ends hold them: one body type, whole bytes or a stream,
 * instead of a fast path per use. Whoever receives holds an {@linkcode Inbound}, whoever
 * sends an {@linkcode Outbound}; each decides in one place whether the bytes travel whole
 * (no stream objects: one DATA and the END) or through a web stream with flow control.
 *
 * Naming throughout the mux, the router and the elements: `up` and `down` are these views
 * of a call's upload and download; `upload` and `download` are always web streams.
 *
 * @module
 */

import type { CircuitError } from "../errors.ts";

/** A stream's whole content: bytes at hand, or a web stream of them. */
export type Body = Uint8Array | ReadableStream<Uint8Array>;

/** The receiving end of a byte stream. */
export interface Inbound {
  /**
   * The bytes as a web stream, made on first use. Bytes that arrived before are read
   * first; a stream already over reads as closed, or as its error.
   */
  readonly stream: ReadableStream<Uint8Array>;
  /**
   * The whole content: its bytes when all of it has arrived and nothing has read it (the
   * stream is then over, and no stream object is made), else {@linkcode Inbound.stream}.
   */
  body(): Body;
  /**
   * The whole content once it has ended, without making the stream; its bytes are taken
   * as they come, so the sender is never stalled.
   *
   * @returns its chunks
   * @throws {CircuitError} the error that broke the stream; `bad request` when the
   *   stream is already being read
   */
  whole(): Promise<Uint8Array[]>;
  /**
   * For a stream that is only a signal (an acknowledgement). Reads nothing.
   *
   * @returns true once it ends having carried no bytes; false if it breaks or carries some
   */
  acked(): Promise<boolean>;
  /**
   * Give up the stream: the sender is told to stop and local readers fail.
   *
   * @param reason what local readers see @default {an `aborted` error}
   */
  reset(reason?: CircuitError): void;
}

/** The sending end of a byte stream. */
export interface Outbound {
  /** The stream's writer side, made on first use; closing it ends the stream. */
  readonly stream: WritableStream<Uint8Array>;
  /**
   * Send `body` as the whole stream, then its end: bytes that fit one chunk within the
   * credit go at once with no stream object; anything else goes through
   * {@linkcode Outbound.stream} with flow control.
   *
   * @param body the whole content
   * @throws {CircuitError} when the stream breaks before all of it is sent
   */
  send(body: Body): Promise<void>;
  /**
   * End the stream now with no bytes (an acknowledgement), without making the stream.
   *
   * @returns false, and nothing sent, when the stream is in use or over
   */
  ack(): boolean;
  /**
   * Give up the stream: the receiver's reader fails. Works whether or not the stream
   * object exists.
   *
   * @param reason what local writers see @default {an `aborted` error}
   */
  reset(reason?: CircuitError): void;
}

/**
 * One array of a whole content's chunks: the lone chunk as it is, several copied into one.
 *
 * @param chunks the content
 * @returns its bytes
 */
export function joinChunks(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  let size = 0;
  for (const c of chunks) size += c.length;
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
