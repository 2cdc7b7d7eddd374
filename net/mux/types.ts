/**
 * What the mux offers and needs: the calls its handler serves and its callers make, and
 * the connection hooks it runs on.
 *
 * @module
 */

import type { CircuitError } from "../errors.ts";
import type { TransportConfig } from "../config.ts";
import type { Inbound, Outbound } from "./body.ts";

/** A call as the callee sees it. */
export interface IncomingCall {
  /** Operation name. */
  op: string;
  /** Request body. */
  body: unknown;
  /** Aborted when the caller cancels or the connection drops. */
  signal: AbortSignal;
  /** The upload, when the caller opened one: bytes from the caller. */
  readonly up: Inbound | null;
  /** The download, when the caller opened one: bytes to the caller, which the handler ends. */
  readonly down: Outbound | null;
  /** Shorthand for `up.stream` (made on first use). */
  readonly upload: ReadableStream<Uint8Array> | null;
  /** Shorthand for `down.stream` (made on first use); the handler must close it. */
  readonly download: WritableStream<Uint8Array> | null;
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
  /** The upload, when asked for (and not given whole as bytes): bytes to the callee. */
  readonly up: Outbound | null;
  /** The download, when asked for: bytes from the callee. */
  readonly down: Inbound | null;
  /** Shorthand for `up.stream` (made on first use); close it to end the upload. */
  readonly upload: WritableStream<Uint8Array> | null;
  /** Shorthand for `down.stream` (made on first use). */
  readonly download: ReadableStream<Uint8Array> | null;
  /**
   * From now on neither the signal nor the time limit cancels the call: it settles only
   * with the reply or with the connection. For a commitment already sent (a receiver's
   * acknowledgement), whose outcome the caller must learn rather than abandon.
   */
  hold(): void;
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
