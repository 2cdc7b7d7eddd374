/**
 * Connecting to a circuit server.
 *
 * @module
 */

import { dial } from "../net/conn.ts";
import type { Connection } from "../net/conn.ts";
import { CircuitError } from "../net/errors.ts";
import { checkKey, parseKey, readKeyFile } from "../net/keys.ts";
import { parseUrl } from "../net/url.ts";
import { Anchor, type AnchorTransport } from "./anchor.ts";
import { checkTimeout } from "./_check.ts";
import { Routes, type RoutesOptions } from "./routes.ts";
import { splitPath } from "./path.ts";
import { run, type RunJob, type RunOptions } from "./run.ts";
import type { ProcCommand } from "../net/wire/mod.ts";

/** Options of {@linkcode connect}. */
export interface ConnectOptions {
  /**
   * The cluster key: raw bytes, or the text of a key file (base64). Absent for a
   * cluster that runs without a key (loopback only).
   */
  key?: Uint8Array | string;
  /**
   * Default time limit of each call, in ms; 0 for none. Blocking calls override it.
   * @default {10000}
   */
  timeoutMs?: number;
  /**
   * Time limit of connecting (TCP plus handshake), in ms.
   * @default {3000}
   */
  dialTimeoutMs?: number;
  /** Cancels connecting. */
  signal?: AbortSignal;
  /**
   * Whether to reach other servers over direct connections. After the first call to an
   * anchor on another server, the client dials that server in the background, and later
   * calls go straight to it instead of through the dialed server (which stays in use for
   * anything the direct connection cannot carry: until it is up, when it cannot be made,
   * and after it closes). False sends every call through the dialed server: one
   * connection only, as for a client that can reach no other server.
   * @default {true}
   */
  direct?: boolean;
}

/**
 * A connection to one server, through which the whole cluster is reached.
 *
 * @example Peek every server
 * ```ts
 * import { connect } from "@circuit/client";
 * await using client = await connect(Deno.env.get("CIRCUIT_URL")!);
 * for (const s of await client.walk("/").ls()) console.log(await client.walk(s.path).peek());
 * ```
 */
export class Client implements AsyncDisposable {
  /** The URL dialed. */
  readonly url: string;
  /** The dialed server's path, `/X…`. */
  readonly server: string;
  #conn: Connection;
  #routes: Routes;
  #transport: AnchorTransport;

  /**
   * Wrap an established connection; use {@linkcode connect} rather than calling this.
   *
   * @param url the URL dialed
   * @param conn the connection
   * @param timeoutMs default time limit of each call, in ms
   * @param routes whether to dial other servers directly, with the key and transport
   *   settings to do it (default: every call goes through `conn`)
   */
  constructor(
    url: string,
    conn: Connection,
    timeoutMs: number,
    routes: RoutesOptions = { direct: false },
  ) {
    this.url = url;
    const id = parseUrl(url).id;
    this.server = `/X${id}`;
    this.#conn = conn;
    const r = this.#routes = new Routes(conn, `X${id}`, routes);
    this.#transport = { route: (server) => r.route(server), timeoutMs };
    void conn.closed.then(() => r.close());
  }

  /**
   * Run a command on every selected server at once (see {@linkcode run}): `/` for every
   * member, or server paths.
   *
   * @param selector `/` or `/X…` server paths
   * @param cmd the command
   * @param options stdin, timeout, signal, parallel starts, capture, line callback
   * @returns the job: its lines as an async iterable, and per-server results
   * @throws {CircuitError} `bad request` for a bad selector
   */
  run(selector: string | readonly string[], cmd: ProcCommand, options?: RunOptions): RunJob {
    return run(this, selector, cmd, options);
  }

  /**
   * A handle on an anchor; nothing is sent until a method is called.
   *
   * @param path an absolute path, e.g. `/X317c2314a386a9db/hi`; `/` is the cluster root
   * @returns the anchor
   */
  walk(path: string): Anchor {
    return new Anchor(this.#transport, splitPath(path));
  }

  /**
   * The other servers this client reaches over a direct connection now (see
   * {@linkcode ConnectOptions.direct}), as paths `/X…`, sorted.
   */
  get directServers(): string[] {
    return this.#routes.direct;
  }

  /** Resolves with the reason when the connection closes. */
  get closed(): Promise<CircuitError> {
    return this.#conn.closed;
  }

  /** Close the connections; pending calls fail with `closed`. */
  close(): void {
    this.#routes.close();
    this.#conn.close();
  }

  /** Same as {@linkcode close}, then waits for direct dials under way to give up. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.#routes.settled();
  }
}

/**
 * Connect to a circuit server.
 *
 * @example Connect with a key file
 * ```ts
 * import { connect, readKeyFile } from "@circuit/client";
 * const client = await connect("circuit://10.0.0.5:7711/4242/Q317c2314a386a9db", {
 *   key: await readKeyFile("/etc/circuit/key"),
 * });
 * console.log(await client.walk(client.server).peek());
 * client.close();
 * ```
 *
 * @param url `circuit://HOST:PORT/PID/Q<16 hex>`, as `circuit start` printed it
 * @param options key, timeouts, signal
 * @returns the client
 * @throws {CircuitError} `bad request` (bad URL or key), `unreachable`, `not found`
 *   (the URL is from an earlier incarnation), `auth` (key mismatch), `timeout`
 */
export async function connect(url: string, options: ConnectOptions = {}): Promise<Client> {
  if (typeof url !== "string") {
    throw new CircuitError("bad request", `connect takes a circuit:// URL, not ${typeof url}`);
  }
  const u = parseUrl(url);
  const key = typeof options.key === "string"
    ? parseKey(options.key)
    : options.key === undefined
    ? undefined
    : checkKey(options.key, "Connecting failed: ");
  checkTimeout(options.timeoutMs, "Connecting");
  checkTimeout(options.dialTimeoutMs, "Connecting");
  const config = options.dialTimeoutMs ? { dialTimeoutMs: options.dialTimeoutMs } : undefined;
  const conn = await dial(u, { key, role: "client", signal: options.signal, config });
  return new Client(url.trim(), conn, options.timeoutMs ?? 10_000, {
    direct: options.direct ?? true,
    key,
    config,
  });
}

export { readKeyFile };
