/**
 * Connecting to a circuit server.
 *
 * @module
 */

import { dial } from "../net/conn.ts";
import type { Connection } from "../net/conn.ts";
import type { CircuitError } from "../net/errors.ts";
import { parseKey, readKeyFile } from "../net/keys.ts";
import type { Mux } from "../net/mux.ts";
import { parseUrl } from "../net/url.ts";
import { Anchor } from "./anchor.ts";
import { splitPath } from "./path.ts";

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
}

/**
 * A connection to one server, through which the whole cluster is reached.
 *
 * @example Peek every server
 * ```ts ignore
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
  #timeoutMs: number;

  /**
   * Wrap an established connection; use {@linkcode connect} rather than calling this.
   *
   * @param url the URL dialed
   * @param conn the connection
   * @param timeoutMs default time limit of each call, in ms
   */
  constructor(url: string, conn: Connection, timeoutMs: number) {
    this.url = url;
    this.server = `/X${parseUrl(url).id}`;
    this.#conn = conn;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * A handle on an anchor; nothing is sent until a method is called.
   *
   * @param path an absolute path, e.g. `/X317c2314a386a9db/hi`; `/` is the cluster root
   * @returns the anchor
   */
  walk(path: string): Anchor {
    const conn = this.#conn;
    const timeoutMs = this.#timeoutMs;
    return new Anchor({ mux: (): Mux => conn.mux, timeoutMs }, splitPath(path));
  }

  /** Resolves with the reason when the connection closes. */
  get closed(): Promise<CircuitError> {
    return this.#conn.closed;
  }

  /** Close the connection; pending calls fail with `closed`. */
  close(): void {
    this.#conn.close();
  }

  /** Same as {@linkcode close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/**
 * Connect to a circuit server.
 *
 * @example Connect with a key file
 * ```ts ignore
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
  const u = parseUrl(url);
  const key = typeof options.key === "string" ? parseKey(options.key) : options.key;
  const conn = await dial(u, {
    key,
    role: "client",
    signal: options.signal,
    config: options.dialTimeoutMs ? { dialTimeoutMs: options.dialTimeoutMs } : undefined,
  });
  return new Client(url.trim(), conn, options.timeoutMs ?? 10_000);
}

export { readKeyFile };
