/**
 * The mux's messages: their tags, their encoding and the checks of their shape. Touches
 * no socket and keeps no state, so it is tested and fuzzed on its own.
 *
 * A message is a msgpack array `[tag, id, …]`; a frame body is one or more messages one
 * after another. The fields after the id, by tag:
 *
 * | tag    | fields                                   |
 * | ------ | ---------------------------------------- |
 * | REQ    | op (string), body, flags (upload 1, download 2) |
 * | RES    | error (or null), value                   |
 * | CANCEL | —                                        |
 * | DATA   | bytes (bin)                              |
 * | CREDIT | bytes granted (1 … 2^30)                 |
 * | END    | —                                        |
 * | RESET  | direction (0 upload, 1 download)         |
 * | PING, PONG | — (id 0)                             |
 * | GOAWAY | reason (string; id 0)                    |
 *
 * @module
 */

import { Packr } from "msgpackr/pack";

/** Credit every byte stream starts with, in bytes (a protocol constant). */
export const INITIAL_WINDOW_BYTES = 1024 * 1024;

/** Message tags. Append-only. */
export const Tag = {
  REQ: 1,
  RES: 2,
  CANCEL: 3,
  DATA: 4,
  CREDIT: 5,
  END: 6,
  RESET: 7,
  PING: 8,
  PONG: 9,
  GOAWAY: 10,
} as const;

/** The direction a RESET names: the upload (caller → callee) or the download. */
export const Dir = { UP: 0, DOWN: 1 } as const;

/** A stream's direction, {@linkcode Dir}. */
export type Direction = typeof Dir[keyof typeof Dir];

/** The bits of a REQ's flags: which streams the call opens. */
export const Flag = { UPLOAD: 1, DOWNLOAD: 2 } as const;

/** Most credit one CREDIT message may grant, in bytes. */
export const MAX_CREDIT_GRANT_BYTES = 1 << 30;

/** No bytes: an empty stream chunk (an acknowledgement). */
export const NO_BYTES: Uint8Array = new Uint8Array(0);

/** A message as it is sent and received: `[tag, id, …fields]`. */
export type Message = unknown[];

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

/**
 * Encode one message.
 *
 * @param msg the message array
 * @returns its msgpack bytes
 * @throws {Error} when a field cannot be encoded (a symbol, a cycle, an integer past 64 bits)
 */
export function encodeMessage(msg: Message): Uint8Array {
  return packr.pack(msg);
}

/**
 * The encoding of `[Tag.DATA, id, <bin of n bytes>]` up to the payload: these bytes and
 * then the payload are the same bytes as {@linkcode encodeMessage} of the whole message,
 * without copying the payload.
 *
 * @param id the call
 * @param n the payload's length in bytes (below 2^32)
 * @returns the message's bytes before its payload
 */
export function encodeDataHead(id: number, n: number): Uint8Array {
  // Let msgpack encode the tag and id, with an empty bin (0xc4 0x00) in place of the
  // payload; then swap that for the real bin header.
  const empty = packr.pack([Tag.DATA, id, NO_BYTES]);
  const prefix = empty.length - 2;
  const head = new Uint8Array(prefix + (n < 256 ? 2 : n < 65536 ? 3 : 5));
  head.set(empty.subarray(0, prefix));
  const v = new DataView(head.buffer, head.byteOffset + prefix);
  if (n < 256) {
    v.setUint8(0, 0xc4);
    v.setUint8(1, n);
  } else if (n < 65536) {
    v.setUint8(0, 0xc5);
    v.setUint16(1, n);
  } else {
    v.setUint8(0, 0xc6);
    v.setUint32(1, n);
  }
  return head;
}

/**
 * Decode a frame body into its values, one per message, unchecked (see
 * {@linkcode checkMessage}).
 *
 * @param body the frame's plaintext
 * @returns the decoded values
 * @throws {Error} when the bytes are not msgpack
 */
export function decodeFrame(body: Uint8Array): unknown[] {
  return packr.unpackMultiple(body) as unknown[];
}

/**
 * Check a decoded value's shape: a known tag, an integer id where the tag needs one, and
 * the fields every state needs (a REQ's op, a DATA's bytes, a CREDIT's amount). What
 * depends on the connection's state (whose id, which call) is checked where it is kept.
 *
 * @param m a value from {@linkcode decodeFrame}
 * @returns null for a well-formed message, else what is wrong (a protocol violation)
 */
export function checkMessage(m: unknown): string | null {
  if (!Array.isArray(m) || typeof m[0] !== "number") return "message is not a tagged array";
  const tag = m[0], id = m[1];
  if (tag !== Tag.PING && tag !== Tag.PONG && tag !== Tag.GOAWAY && !Number.isInteger(id)) {
    return `message ${tag} without an id`;
  }
  switch (tag) {
    case Tag.REQ:
      return typeof m[2] === "string" ? null : `bad request id ${id}`;
    case Tag.DATA:
      return m[2] instanceof Uint8Array ? null : "DATA without bytes";
    case Tag.CREDIT: {
      const n = m[2];
      return typeof n !== "number" || n <= 0 || n > MAX_CREDIT_GRANT_BYTES ? "bad CREDIT" : null;
    }
    case Tag.RES:
    case Tag.CANCEL:
    case Tag.END:
    case Tag.RESET:
    case Tag.PING:
    case Tag.PONG:
    case Tag.GOAWAY:
      return null;
    default:
      return `unknown message tag ${tag}`;
  }
}
