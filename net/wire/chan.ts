/**
 * The channel kind on the wire: its operations, their arguments and replies, the batch
 * bounds, and the `recvMany` codec (the element encodes, the client decodes).
 *
 * - `send`: the message as the call's upload → null.
 * - `recv`: the message on the download; the receiver ends its upload to acknowledge
 *   it → null.
 * - `sendMany`: args the messages, an array of byte arrays → {@linkcode SendManyReply}.
 * - `recvMany`: args {@linkcode RecvManyArgs}; the messages on the download, each after
 *   its length ({@linkcode encodeRecvMany}); acknowledged as a `recv` → null.
 * - `close`: → null.
 *
 * @module
 */

import { CircuitError, type WireError } from "../errors.ts";

/** The kind name `make` and `ls -l` use for channels. */
export const CHAN_KIND = "chan";

/** A channel's own operations. */
export const ChanOp = {
  /** Send one message, the call's upload. */
  SEND: "send",
  /** Receive one message: download, then an acknowledging end of the upload. */
  RECV: "recv",
  /** Send a batch: args the messages. */
  SEND_MANY: "sendMany",
  /** Receive a batch: args {@linkcode RecvManyArgs}. */
  RECV_MANY: "recvMany",
  /** Close for sending. */
  CLOSE: "close",
} as const;

/** A channel operation's name. */
export type ChanOpName = typeof ChanOp[keyof typeof ChanOp];

/** What `make` takes for a channel. */
export interface ChanSpec {
  /** Buffer capacity in messages; 0 is a rendezvous. Servers also take digits as text. */
  cap: number;
}

/** A channel's state, as `peek` returns it. */
export interface ChanState {
  /** Buffer capacity in messages. */
  Cap: number;
  /** Closed for sending. */
  Closed: boolean;
  /** Scrubbed. */
  Aborted: boolean;
  /** Completed sends. */
  NumSend: number;
  /** Completed deliveries. */
  NumRecv: number;
}

/** Most messages in one `sendMany` or `recvMany`. */
export const BATCH_MESSAGES = 256;
/**
 * Most bytes of messages one `sendMany` carries, and most one `recvMany` delivers with
 * their lengths: what goes whole in one stream chunk.
 */
export const BATCH_BYTES: number = 60 * 1024;
/** Bytes before each message in a `recvMany` download: its length, big-endian. */
export const BATCH_HEADER_BYTES = 4;

/** The largest message a `recvMany` length header can state, in bytes (2³² − 1). */
const MAX_FRAMED_BYTES = 0xffff_ffff;

/** What `recvMany` takes. */
export interface RecvManyArgs {
  /** Most messages wanted, 1 to {@linkcode BATCH_MESSAGES}. */
  n: number;
}

/** What `sendMany` replies: how far it got, which messages were refused, and why. */
export interface SendManyReply {
  /** Messages handled, from the first: each was admitted unless `refused` lists it. */
  sent: number;
  /** Messages among the first `sent` refused on their own (over the size limit), and why. */
  refused?: { index: number[]; error: WireError };
  /** When `sent` is short of the batch: why the rest were not admitted (closed, aborted). */
  error?: WireError;
}

/**
 * Check a `sendMany`'s messages: 1 to {@linkcode BATCH_MESSAGES} byte arrays of at most
 * {@linkcode BATCH_BYTES} in all.
 *
 * @param raw the call's args
 * @returns the messages
 * @throws {CircuitError} `bad request` otherwise
 */
export function parseSendManyArgs(raw: unknown): Uint8Array[] {
  const bad = (why: string) => new CircuitError("bad request", `sendMany: ${why}`);
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > BATCH_MESSAGES) {
    throw bad(`expected 1 to ${BATCH_MESSAGES} messages`);
  }
  let bytes = 0;
  for (const m of raw) {
    if (!(m instanceof Uint8Array)) throw bad("a message is not bytes");
    bytes += m.length;
  }
  if (bytes > BATCH_BYTES) throw bad(`the batch exceeds ${BATCH_BYTES} bytes`);
  return raw;
}

/**
 * Check a `recvMany`'s size: {@linkcode RecvManyArgs} with n from 1 to
 * {@linkcode BATCH_MESSAGES}.
 *
 * @param raw the call's args
 * @returns n
 * @throws {CircuitError} `bad request` otherwise
 */
export function parseRecvManyArgs(raw: unknown): number {
  const n = (raw as Partial<RecvManyArgs> | null)?.n;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > BATCH_MESSAGES) {
    throw new CircuitError(
      "bad request",
      `recvMany: n must be an integer from 1 to ${BATCH_MESSAGES}, got "${String(n)}"`,
    );
  }
  return n;
}

/**
 * The header before one message of a `recvMany` download: its length, big-endian.
 * A large message goes as this header and then its bytes as they are read.
 *
 * @param n the message's length in bytes
 * @returns {@linkcode BATCH_HEADER_BYTES} bytes
 * @throws {RangeError} when n exceeds 2³² − 1
 */
export function encodeRecvManyHeader(n: number): Uint8Array {
  if (n > MAX_FRAMED_BYTES) {
    throw new RangeError(`A message of ${n} bytes exceeds a batch's 4 GiB`);
  }
  const b = new Uint8Array(BATCH_HEADER_BYTES);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/**
 * A `recvMany` download: each message after its length, in one buffer.
 *
 * @param messages the messages, in order
 * @returns the download's bytes
 */
export function encodeRecvMany(messages: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const m of messages) size += BATCH_HEADER_BYTES + m.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const m of messages) {
    view.setUint32(at, m.length);
    out.set(m, at + BATCH_HEADER_BYTES);
    at += BATCH_HEADER_BYTES + m.length;
  }
  return out;
}

/**
 * Split a whole `recvMany` download into its messages. The messages are views into
 * `bytes`, so keeping one keeps all of the download.
 *
 * @param bytes the whole download
 * @returns at least one message
 * @throws {CircuitError} `closed` when the download is empty or a length runs past its end
 */
export function decodeRecvMany(bytes: Uint8Array): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + BATCH_HEADER_BYTES > bytes.length) throw torn();
    const n = view.getUint32(at);
    at += BATCH_HEADER_BYTES;
    if (at + n > bytes.length) throw torn();
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  if (out.length === 0) throw torn();
  return out;
}

function torn(): CircuitError {
  return new CircuitError("closed", "Receiving failed: a batch of messages arrived torn");
}
