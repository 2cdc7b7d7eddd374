/**
 * What the mux offers and needs: the calls its handler serves and its callers make, and
 * the connection hooks it runs on.
 *
 * @module
 */

import type { CircuitError } from "../errors.ts";
import type { TransportConfig } from "../config.ts";

/** A call as the callee sees it. */
export interface IncomingCall {
  /** Operation name. */
  op: string;
  /** Request body. */
  body: unknown;
  /** Aborted when the caller cancels or the connection drops. */
  signal: AbortSignal;
  /** Bytes from the caller, when the call has an upload. */
  upload: ReadableStream<Uint8Array> | null;
  /** Bytes to the caller, when the call has a download; the handler must close it. */
  download: WritableStream<Uint8Array> | null;
  /**
   * The whole upload, when all of it has arrived and nobody has read `upload`: its chunks
   * (the upload is then over); else null. A small message sent with its request needs
   * no stream this way.
   */
  takeUpload?(): Uint8Array[] | null;
  /**
   * Send `bytes` as the whole download, then its end, without making the `download`
   * stream; false, and nothing sent, when that stream is in use or the bytes do not fit
   * one chunk within the credit.
   */
  sendDownload?(bytes: Uint8Array): boolean;
  /**
   * For an upload that is only a signal (an acknowledgement): resolves true once it ends
   * having carried no bytes, false if it breaks or carries some. Reads nothing through
   * `upload`.
   */
  uploadEnded?(): Promise<boolean>;
}

/** Serves incoming calls; what it returns is the reply, what it throws the error. */
export type Handler = (call: IncomingCall) => Promise<unknown>;

/** Options of an outgoing call. */
export interface CallOptions {
  /** Cancels the call: the callee's signal aborts and the streams reset. */
  signal?: AbortSignal;
  /** Cancels the call with a `timeout` error after this many ms; 0 or absent: never. */
  timeoutMs?: number;
  /**
   * Open an upload stream. Bytes instead of `true` are the whole upload: they go out with
   * the request and the call has no upload writer (cheaper than a stream for a small
   * message; flow control still applies to a large one).
   */
  upload?: boolean | Uint8Array;
  /** Open a download stream. */
  download?: boolean;
  /**
   * What the call is, for the messages of its timeout and abort errors, e.g.
   * `Recv /X1/chan` (default: `Call "OP"`).
   */
  label?: string;
}

/** An outgoing call. */
export interface OutgoingCall {
  /** The reply. */
  result: Promise<unknown>;
  /** Bytes to the callee (when asked for); close it to end the upload. */
  upload: WritableStream<Uint8Array> | null;
  /** Bytes from the callee (when asked for). */
  download: ReadableStream<Uint8Array> | null;
  /**
   * The whole download once it has ended, without making the `download` stream: its
   * chunks, or the error that broke it. Null when there is no download or its stream is
   * in use. A small reply-like message needs no stream this way.
   */
  downloadWhole?(): Promise<Uint8Array[]> | null;
  /**
   * End the upload now with no bytes (an acknowledgement), without making the `upload`
   * stream; false when there is no upload or its stream is in use.
   */
  endUpload?(): boolean;
  /** Give up the upload: the callee's reader fails. Works whether or not its stream exists. */
  resetUpload?(): void;
  /**
   * From now on neither the signal nor the time limit cancels the call: it settles only
   * with the reply or with the connection. For a commitment already sent (a receiver's
   * acknowledgement), whose outcome the caller must learn rather than abandon.
   */
  holdToEnd?(): void;
}

/** Counters for `stk` and benchmarks. */
export interface MuxStats {
  /** Calls this side started that have not finished. */
  callsOut: number;
  /** Calls this side serves that have not finished. */
  callsIn: number;
  /** Frames written. */
  framesOut: number;
  /** Frames read. */
  framesIn: number;
  /** Messages written. */
  messagesOut: number;
  /** Last measured ping round trip in milliseconds, or -1. */
  rttMs: number;
  /** Bytes queued for writing. */
  queuedBytes: number;
}

/** What the mux needs from the connection under it. */
export interface MuxOptions {
  /** 1 for the dialer (odd ids), 2 for the acceptor (even ids). */
  parity: 1 | 2;
  /** Serves the peer's calls; absent means every call is refused. */
  handler?: Handler;
  /** Limits and timings. */
  config: TransportConfig;
  /**
   * Writes one frame whose body is `parts` one after another, `size` bytes in all (sealed
   * by the connection, which joins them: the mux never copies a batch into one body). The
   * parts must be consumed (sealed into the frame's own memory) before it returns: the mux
   * then lets their owners reuse them.
   */
  writeFrame(parts: Uint8Array[], size: number): Promise<void>;
  /** Called once, when the mux closes, with the reason. */
  onClose(reason: CircuitError): void;
  /** Names the peer in error messages. */
  peerName: string;
  /** One-line event log (protocol violations). */
  log?: (message: string) => void;
}
