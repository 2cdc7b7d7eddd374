/**
 * Anchor handles: a place in the cluster's namespace and what can be done there.
 *
 * @module
 */

import { abortError, CircuitError } from "../net/errors.ts";
import type { Route } from "./routes.ts";
import {
  CHAN_KIND,
  type ChanSpec,
  type ContainerRun,
  DNS_KIND,
  DOCKER_KIND,
  type DockerSpec,
  type ElementRequest,
  JOIN_KIND,
  type JoinArgs,
  LEAVE_KIND,
  type LsEntry,
  type LsRequest,
  type MakeRequest,
  type NameserverSpec,
  Op,
  PROC_KIND,
  type ProcCommand,
  type ProcSpec,
  type ProcState,
  ServerOp,
} from "../net/wire/mod.ts";
import { listOn } from "./_ls.ts";
import { checkElementPath, comparePaths, joinPath, splitPath } from "./path.ts";
import type { CallOptions, ElementAnchor, OpenOptions, StreamCall } from "./types.ts";
import { checkTimeout } from "./_check.ts";
import { handleFor, type HandleKind, type HandleOf } from "./kinds.ts";
import type { Proc } from "./proc.ts";
import type { Chan } from "./chan.ts";
import type { Container } from "./docker.ts";
import type { Subscription } from "./subscription.ts";
import type { Nameserver } from "./dns.ts";

export type { CallOptions, OpenOptions, StreamCall };
export { comparePaths };

/** Options of {@linkcode Anchor.ls}. */
export interface LsOptions extends CallOptions {
  /** Every descendant rather than direct children. @default {false} */
  recursive?: boolean;
}

/** What an anchor needs from its client. */
export interface AnchorTransport {
  /**
   * The connection a call on an anchor under `server` takes.
   *
   * @param server the path's first component (`X…`), undefined for the root
   */
  route(server: string | undefined): Route;
  /** Default time limit, in ms. */
  timeoutMs: number;
}

/**
 * A place in the namespace, e.g. `/X317c2314a386a9db/hi`. Making a handle sends
 * nothing; each method is one round trip to the anchor's server: through the dialed
 * server, or over the client's direct connection to it once there is one.
 *
 * @example Listing and peeking
 * ```ts
 * import { connect } from "@circuit/client";
 * await using client = await connect("circuit://127.0.0.1:7711/1234/Q317c2314a386a9db");
 * for (const entry of await client.walk("/").ls()) {
 *   console.log(entry.path, await client.walk(entry.path).peek());
 * }
 * ```
 */
export class Anchor implements ElementAnchor {
  /** Path components. */
  readonly components: readonly string[];
  #t: AnchorTransport;

  /**
   * Make a handle; use {@linkcode Client.walk} rather than calling this.
   *
   * @param transport the client's connection
   * @param components path components
   */
  constructor(transport: AnchorTransport, components: string[]) {
    this.#t = transport;
    this.components = Object.freeze([...components]);
  }

  /** The absolute path, `/X…/a/b` (`/` for the root). */
  get path(): string {
    return joinPath([...this.components]);
  }

  /**
   * A handle below this one.
   *
   * @param path a relative path, e.g. `a/b`
   * @returns the anchor
   */
  walk(path: string): Anchor {
    return new Anchor(this.#t, [...this.components, ...splitPath(path)]);
  }

  /**
   * List anchors below this one: servers at `/`, children elsewhere.
   *
   * @param options recursion, signal, timeout
   * @returns entries with absolute paths and kinds, sorted, parents first; in a recursive
   *   listing of `/`, a server that did not answer has its entry's `error` set
   * @throws {CircuitError} `not found`, `unreachable`, `timeout`, `aborted`
   */
  async ls(options: LsOptions = {}): Promise<LsEntry[]> {
    const { signal } = options;
    const label = `Ls ${this.path}`;
    if (signal?.aborted) throw abortError(signal, label);
    checkTimeout(options.timeoutMs, label);
    const body: LsRequest = { path: [...this.components], recursive: options.recursive ?? false };
    const route = this.#t.route(this.components[0]);
    const timeoutMs = options.timeoutMs ?? this.#t.timeoutMs;
    try {
      const entries = await listOn(route.mux, body, { signal, timeoutMs, label });
      return entries.sort((a, b) => comparePaths(a.path, b.path));
    } finally {
      route.settled?.();
    }
  }

  /**
   * The element's state; `null` for an anchor without an element.
   *
   * @param options signal, timeout
   * @returns the element's peek JSON
   * @throws {CircuitError} `not found`, `unreachable`, `timeout`, `aborted`
   */
  async peek(options: CallOptions = {}): Promise<unknown> {
    return await this.request(Op.PEEK, { path: [...this.components] }, options);
  }

  /**
   * Abort the element here and free the anchor; nothing happens on an empty anchor.
   *
   * @param options signal, timeout
   * @throws {CircuitError} `bad request` on a server anchor; `unreachable`, `timeout`
   */
  async scrub(options: CallOptions = {}): Promise<void> {
    await this.request(Op.SCRUB, { path: [...this.components] }, options);
  }

  /**
   * A server's diagnostic dump (this anchor must be a server, `/X…`).
   *
   * @param options signal, timeout
   * @returns memory, connections, elements, in-flight operations
   * @throws {CircuitError} `not found` when it is not a server
   */
  async stk(options: CallOptions = {}): Promise<Record<string, unknown>> {
    return await this.element(ServerOp.STK, null, options) as Record<string, unknown>;
  }

  /**
   * Make this server (`/X…`) join the cluster of `url`, merging the two.
   *
   * @param url a member of the other cluster
   * @param options signal, timeout
   * @throws {CircuitError} `unreachable`, `auth`, `not found` (stale URL)
   */
  async join(url: string, options: CallOptions = {}): Promise<void> {
    await this.element(ServerOp.JOIN, { url } satisfies JoinArgs, options);
  }

  /**
   * Stop this server (`/X…`) cleanly; the others drop it.
   *
   * @param options signal, timeout
   */
  async suicide(options: CallOptions = {}): Promise<void> {
    await this.element(ServerOp.SUICIDE, null, options);
  }

  /**
   * Make an element of any kind here (the typed `make*` helpers call this).
   *
   * @param kind element kind
   * @param spec kind-specific specification
   * @param options signal, timeout
   * @returns the new element's peek
   * @throws {CircuitError} `busy` (`anchor already has an element`), `bad request` (also
   *   for a path servers refuse: too deep, a name too long or with control characters)
   */
  async make(kind: string, spec: unknown, options: CallOptions = {}): Promise<unknown> {
    checkElementPath([...this.components]);
    const body: MakeRequest = { path: [...this.components], kind, spec };
    return await this.request(Op.MAKE, body, options);
  }

  /** Make an element of a kind the client has a handle for, and return the handle. */
  async #made<K extends HandleKind>(
    kind: K,
    spec: unknown,
    options: CallOptions,
  ): Promise<HandleOf<K>> {
    await this.make(kind, spec, options);
    return handleFor(kind, this);
  }

  /**
   * Start a process here.
   *
   * @example Start, wait, read what it printed
   * ```ts
   * import { connect } from "@circuit/client";
   * await using client = await connect(Deno.env.get("CIRCUIT_URL")!);
   * const anchor = client.walk(`${client.server}/example`);
   * const proc = await anchor.makeProc({ Path: "/bin/echo", Args: ["hi"] });
   * await proc.wait();
   * console.log(await new Response(proc.stdout).text()); // "hi\n"
   * ```
   *
   * @param cmd the command (no $PATH search; Env absent inherits the server's)
   * @param options signal, timeout
   * @returns the process handle
   * @throws {CircuitError} `busy` (`anchor already has an element`), `bad request` for a
   *   bad command, or for an exec failure (`exec error: …`; the element stays, in phase
   *   `unknown`, until scrubbed)
   */
  async makeProc(cmd: ProcCommand, options: CallOptions = {}): Promise<Proc> {
    const spec: ProcSpec = { cmd };
    const state = await this.make(PROC_KIND, spec, options) as ProcState;
    if (state?.Phase === "unknown" && state.Exit) {
      throw new CircuitError("bad request", state.Exit.Body);
    }
    return handleFor(PROC_KIND, this);
  }

  /**
   * A handle on the process at this anchor (nothing is checked until it is used).
   *
   * @returns the handle
   */
  proc(): Proc {
    return handleFor(PROC_KIND, this);
  }

  /**
   * Run a container here (the server must run with `--docker`).
   *
   * @param run image, command and limits, as `mkdkr` reads them
   * @param options signal, timeout
   * @returns the container handle
   * @throws {CircuitError} `bad request` (unknown image, bad volume, Lxc options, docker not
   *   enabled), `unreachable` (engine down); no element is left behind
   */
  async makeDocker(run: ContainerRun, options: CallOptions = {}): Promise<Container> {
    return await this.#made(DOCKER_KIND, { run } satisfies DockerSpec, options);
  }

  /**
   * A handle on the container at this anchor.
   *
   * @returns the handle
   */
  container(): Container {
    return handleFor(DOCKER_KIND, this);
  }

  /**
   * Make a channel here.
   *
   * @param cap buffer capacity in messages; 0 is a rendezvous
   * @param options signal, timeout
   * @returns the channel handle
   * @throws {CircuitError} `bad request` for a bad capacity; `busy` when the anchor is taken
   */
  async makeChan(cap: number, options: CallOptions = {}): Promise<Chan> {
    return await this.#made(CHAN_KIND, { cap } satisfies ChanSpec, options);
  }

  /**
   * A handle on the channel at this anchor.
   *
   * @returns the handle
   */
  chan(): Chan {
    return handleFor(CHAN_KIND, this);
  }

  /**
   * Start a DNS server here, on UDP and TCP.
   *
   * @example Serve an A record
   * ```ts
   * import { connect } from "@circuit/client";
   * await using client = await connect(Deno.env.get("CIRCUIT_URL")!);
   * const anchor = client.walk(`${client.server}/example`);
   * const ns = await anchor.makeNameserver("127.0.0.1:5353");
   * await ns.set("www.example.com. 60 IN A 10.0.0.7");
   * console.log((await ns.peek()).Address); // "127.0.0.1:5353"
   * ```
   *
   * @param addr `HOST:PORT`, `:PORT` or `HOST`; absent: every interface, a free port
   *   (the nameserver's `Address` then shows the server's advertised host)
   * @param options signal, timeout
   * @returns the nameserver handle
   * @throws {CircuitError} `bad request` for a bad or busy address; `busy` when the
   *   anchor is taken
   */
  async makeNameserver(addr?: string, options: CallOptions = {}): Promise<Nameserver> {
    const spec: NameserverSpec = addr === undefined ? {} : { addr };
    return await this.#made(DNS_KIND, spec, options);
  }

  /**
   * A handle on the nameserver at this anchor.
   *
   * @returns the handle
   */
  nameserver(): Nameserver {
    return handleFor(DNS_KIND, this);
  }

  /**
   * Subscribe here to servers joining: starts with every current member.
   *
   * @param options signal, timeout
   * @returns the subscription
   */
  async makeOnJoin(options: CallOptions = {}): Promise<Subscription> {
    return await this.#made(JOIN_KIND, null, options);
  }

  /**
   * Subscribe here to servers leaving or failing.
   *
   * @param options signal, timeout
   * @returns the subscription
   */
  async makeOnLeave(options: CallOptions = {}): Promise<Subscription> {
    return await this.#made(LEAVE_KIND, null, options);
  }

  /**
   * A handle on the subscription at this anchor.
   *
   * @returns the handle
   */
  subscription(): Subscription {
    return handleFor(JOIN_KIND, this);
  }

  /**
   * Call one of the element's own operations.
   *
   * @param op operation name
   * @param args its arguments
   * @param options signal, timeout
   * @returns its reply
   */
  async element(op: string, args: unknown, options: CallOptions = {}): Promise<unknown> {
    const body: ElementRequest = { path: [...this.components], op, args };
    return await this.request(Op.ELEMENT, body, options, op);
  }

  /**
   * Start one of the element's own operations with byte streams. Unlike the other
   * methods it has no default time limit: streams run as long as they need.
   *
   * @param op operation name
   * @param args its arguments
   * @param options streams wanted (`upload` may be the whole upload as bytes), signal,
   *   timeout (0 or absent: none)
   * @returns the reply promise and the streams asked for
   */
  open(op: string, args: unknown, options: OpenOptions = {}): StreamCall {
    const body: ElementRequest = { path: [...this.components], op, args };
    const label = `${capital(op)} ${this.path}`;
    checkTimeout(options.timeoutMs, label);
    const route = this.#t.route(this.components[0]);
    const call = route.mux.call(Op.ELEMENT, body, {
      signal: options.signal,
      timeoutMs: options.timeoutMs ?? 0,
      upload: options.upload,
      download: options.download,
      label,
    });
    if (route.settled) call.result.then(route.settled, route.settled);
    return call;
  }

  /**
   * One request with the client's timeout and the caller's signal.
   *
   * @param op wire operation
   * @param body request body
   * @param options signal, timeout
   * @param name what the call does, for error messages (default: the wire operation)
   * @returns the reply
   */
  async request(
    op: string,
    body: unknown,
    options: CallOptions = {},
    name: string = op,
  ): Promise<unknown> {
    const { signal } = options;
    const label = `${capital(name)} ${this.path}`;
    if (signal?.aborted) throw abortError(signal, label);
    checkTimeout(options.timeoutMs, label);
    const timeoutMs = options.timeoutMs ?? this.#t.timeoutMs;
    const route = this.#t.route(this.components[0]);
    try {
      return await route.mux.request(op, body, { signal, timeoutMs, label });
    } finally {
      route.settled?.();
    }
  }
}

function capital(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
