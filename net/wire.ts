/**
 * The wire schema: every call the client and servers make, with its request and reply
 * shapes. Client and server both import this module, so the protocol reads in one place.
 * Operation names are append-only; a removed one is never reused.
 *
 * Paths travel as arrays of components (`/X…/a/b` → `["X…", "a", "b"]`).
 *
 * @module
 */

import type { WireError } from "./errors.ts";

/** Operation names. */
export const Op = {
  /** List anchors: {@linkcode LsRequest} → {@linkcode LsEntry}[]. */
  LS: "ls",
  /** Element state: {@linkcode PathRequest} → JSON value, `null` for an empty anchor. */
  PEEK: "peek",
  /** Abort and remove an element: {@linkcode PathRequest} → null. */
  SCRUB: "scrub",
  /** Make an element: {@linkcode MakeRequest} → the kind's reply. */
  MAKE: "make",
  /** An element's own operation: {@linkcode ElementRequest} → the element's reply. */
  ELEMENT: "element",
  /**
   * Peer ↔ peer: a push-pull of the membership layer carried over a dialed connection
   * (joins and partition healing): {@linkcode SyncMessage} both ways.
   */
  SYNC: "member.sync",
} as const;

/** Fields every routed request carries. */
export interface PathRequest {
  /** Path components; the first names the server, when present. */
  path: string[];
  /** Who asked, filled in by the first server (for the operation log). */
  caller?: string;
}

/** `ls`. */
export interface LsRequest extends PathRequest {
  /** Every descendant (`/...`) rather than direct children. */
  recursive: boolean;
}

/** One listed anchor. */
export interface LsEntry {
  /** Absolute path, `/X…/a/b`. */
  path: string;
  /** `server`, an element kind (`chan`, `proc`, `@join`, …), or `·` for none. */
  kind: string;
  /**
   * Only on a server entry of a recursive cluster listing: why that server's anchors
   * are missing (it did not answer).
   */
  error?: string;
}

/** `make`. */
export interface MakeRequest extends PathRequest {
  /** Element kind, as registered. */
  kind: string;
  /** Kind-specific specification (a process command, a channel capacity, …). */
  spec: unknown;
}

/** An element's own operation. */
export interface ElementRequest extends PathRequest {
  /** Operation name, e.g. `stk`, `join`, `send`, `wait`. */
  op: string;
  /** Operation arguments. */
  args?: unknown;
}

/** A member as gossiped. */
export interface MemberInfo {
  /** Server id, 16 hex digits (the path is `/X` + id). */
  id: string;
  /** Its circuit URL. */
  url: string;
  /** RFC 3339 start time. */
  joined: string;
}

/** `member.sync` request and reply. */
export interface SyncMessage {
  /**
   * Every member the sender remembers, in any state, as membership records
   * (`net/membership/messages.ts`: id, url, addr, inc, start, status); checked on receipt.
   */
  records: unknown[];
}

// Channel batches: a `sendMany` carries its messages as its args, an array of byte
// arrays; a `recvMany` (args `{n}`) downloads each message after its length.

/** Most messages in one `sendMany` or `recvMany`. */
export const BATCH_MESSAGES = 256;
/**
 * Most bytes of messages one `sendMany` carries, and most one `recvMany` delivers with
 * their lengths: what goes whole in one stream chunk.
 */
export const BATCH_BYTES: number = 60 * 1024;
/** Bytes before each message in a `recvMany` download: its length, big-endian. */
export const BATCH_HEADER_BYTES = 4;

/** What `sendMany` replies: how far it got, which messages were refused, and why. */
export interface SendManyReply {
  /** Messages handled, from the first: each was admitted unless `refused` lists it. */
  sent: number;
  /** Messages among the first `sent` refused on their own (over the size limit), and why. */
  refused?: { index: number[]; error: WireError };
  /** When `sent` is short of the batch: why the rest were not admitted (closed, aborted). */
  error?: WireError;
}
