/**
 * The element contract every kind implements, and the registry's entry type. The
 * server core works only through these interfaces; a new kind is a new folder under
 * `elements/` plus one line in `elements/registry.ts`.
 *
 * @module
 */

import type { Inbound, Outbound } from "../net/mux/mod.ts";

/** A call on an element, as the element sees it. */
export interface ElementCall {
  /** The operation's arguments. */
  args: unknown;
  /** Aborted when the caller goes away or cancels. */
  signal: AbortSignal;
  /**
   * The upload, if the call carries one: bytes from the caller, whole or as a stream
   * (`up.body()`), or only an acknowledgement (`up.acked()`).
   */
  up: Inbound | null;
  /**
   * The download, if the call carries one: bytes to the caller (`down.send(body)`, or
   * `down.stream`, which the element closes).
   */
  down: Outbound | null;
  /** Who is calling, for logs. */
  caller: string;
}

/** Server-wide settings elements read (from `circuit start` flags). */
export interface ElementSettings {
  /** Bytes of stdout and of stderr retained per process or container. */
  outputBoundBytes: number;
  /**
   * How long, in ms, a process's full output stream waits for its first reader instead
   * of dropping its oldest bytes; 0 never waits.
   */
  outputHoldMs: number;
  /** Time between TERM and KILL when a process is scrubbed or the server stops, in ms. */
  scrubGraceMs: number;
  /** Where channel messages larger than 1 MiB are held while in the channel. */
  spoolDir: string;
  /** The largest channel message accepted, in bytes. */
  maxMessageBytes: number;
  /** The server's var directory. */
  varDir: string;
  /** DOCKER_HOST of the engine for docker elements; null when `--docker` is off. */
  dockerHost: string | null;
  /**
   * The host this server's URL advertises (never a wildcard): what an element bound to
   * any interface shows as its dialable address. @default {"127.0.0.1"}
   */
  advertiseHost?: string;
}

/** A membership change as elements see it. */
export interface ClusterEvent {
  /** Joined, or left (gracefully or by failure). */
  type: "join" | "leave";
  /** The server's path, `/X…`. */
  path: string;
}

/** The cluster's membership, for elements that report it. */
export interface ClusterView {
  /** Paths of every live member, this server included, sorted. */
  members(): string[];
  /**
   * Listen for changes, in the order this server sees them.
   *
   * @returns a function that stops listening
   */
  subscribe(fn: (e: ClusterEvent) => void): () => void;
}

/** What the core gives an element when making it. */
export interface ElementContext {
  /** The element's absolute path, `/X…/a/b`. */
  path: string;
  /** The hosting server's id (16 hex digits). */
  serverId: string;
  /** Server-wide settings. */
  settings: Readonly<ElementSettings>;
  /** Remove this element from its anchor (for elements that scrub themselves). */
  removeSelf(): void;
  /**
   * Remove this element from its anchor (`ls` and `peek` no longer show it) but keep
   * serving its own operations at its path until `until` settles, the path is scrubbed,
   * or something new is made there: an element that scrubs itself keeps what its
   * callers still need (a process's exit status and retained output).
   * @default {removeSelf}
   */
  retireSelf?(until: Promise<void>): void;
  /** The cluster's membership. */
  cluster: ClusterView;
}

/** A live element at an anchor. */
export interface Element {
  /** The `ls -l` kind name: `chan`, `proc`, `dns`, `docker`, `@join`, … */
  readonly kind: string;
  /**
   * The element's operations that change nothing (`stk` on a server): the core serves
   * them without writing them to the operation log. @default {none}
   */
  readonly queries?: ReadonlySet<string>;
  /** State as a JSON value, printed by `peek` (may be fetched, hence a promise). */
  peek(): unknown | Promise<unknown>;
  /** Abort everything and release resources; the core then frees the anchor. */
  scrub(): void | Promise<void>;
  /**
   * Serve one of the element's own operations.
   *
   * @throws {CircuitError} `bad request` for an operation the kind does not have
   */
  call(op: string, call: ElementCall): Promise<unknown>;
}

/** A registered element kind. */
export interface ElementKind {
  /** Name used by `make` (`proc`, `chan`, `dns`, `docker`, `@join`, `@leave`). */
  readonly name: string;
  /**
   * Validate the spec and make the element.
   *
   * @throws {CircuitError} `bad request` naming what is wrong with the spec
   */
  make(ctx: ElementContext, spec: unknown, call: ElementCall): Promise<Element>;
}
