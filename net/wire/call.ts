/**
 * The routed calls every client and server makes, whatever the element kind: listing,
 * peeking, scrubbing, making, an element's own operation, and the membership sync
 * between servers. The kinds' own operations are in the modules beside this one.
 *
 * Operation names are append-only; a removed one is never reused. Paths travel as
 * arrays of components (`/X…/a/b` → `["X…", "a", "b"]`).
 *
 * @module
 */

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
  /** Operation name, e.g. `stk`, `join`, `send`, `wait` (see each kind's `…Op`). */
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
