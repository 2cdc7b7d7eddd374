/**
 * Which connection a call takes. Every call can go through the dialed server, which
 * forwards it to the server that holds the anchor. A long-lived client also dials that
 * server itself, in the background, after its first call there; once that direct
 * connection is up, later calls go straight to it. A call then crosses one connection
 * instead of two, and the dialed server no longer decrypts and re-encrypts its bytes.
 *
 * Rules:
 * - The first call to a server never waits for a dial: it is forwarded while the direct
 *   connection is being made.
 * - A server's calls move to the direct connection only when none of its forwarded calls
 *   is still waiting for its reply, so calls made one after the other reach the server in
 *   that order (a channel's sends, for one, must).
 * - A direct dial that fails (the server's address is not reachable from here, say) is
 *   retried only after {@linkcode DIRECT_RETRY_MS}; calls keep being forwarded meanwhile.
 *   A direct connection that closes is forgotten the same way.
 *
 * @module
 */

import { type Connection, dial } from "../net/conn.ts";
import type { Mux } from "../net/mux.ts";
import { parseUrl } from "../net/url.ts";
import { Op } from "../net/wire.ts";

/**
 * How long a server whose direct dial failed, or whose direct connection closed, is
 * reached only through the dialed server, in ms.
 */
export const DIRECT_RETRY_MS = 30_000;

const SERVER_NAME = /^X[0-9a-f]{16}$/;

/** Where one call goes, and what to tell the routes when its reply is in. */
export interface Route {
  /** The connection's mux. */
  mux: Mux;
  /** Call when the call's reply has settled (forwarded calls count against switching). */
  settled?: () => void;
}

interface Peer {
  conn?: Connection;
  dialing?: AbortController;
  retryAt: number;
  forwarded: number;
}

/** Options of {@linkcode Routes}. */
export interface RoutesOptions {
  /** The cluster key. */
  key?: Uint8Array;
  /** Time limit of a direct dial, in ms. */
  dialTimeoutMs?: number;
  /** Whether to dial other servers at all; false forwards every call. */
  direct: boolean;
}

/** The client's connections: the dialed one, and direct ones to other servers. */
export class Routes {
  #dialed: Connection;
  #self: string;
  #o: RoutesOptions;
  #peers = new Map<string, Peer>();
  #dials = new Set<Promise<void>>();
  #closed = false;

  /**
   * @param dialed the connection {@linkcode connect} made
   * @param self the dialed server's first path component, `X…`
   * @param options key, dial timeout, whether to dial directly
   */
  constructor(dialed: Connection, self: string, options: RoutesOptions) {
    this.#dialed = dialed;
    this.#self = self;
    this.#o = options;
  }

  /**
   * The route of a call on an anchor whose path starts with `server`.
   *
   * @param server the first path component (`X…`), or undefined for the root
   * @returns the mux to call on
   */
  route(server: string | undefined): Route {
    const dialed = this.#dialed.mux;
    if (!this.#o.direct || this.#closed || !server || server === this.#self) return { mux: dialed };
    // Not a server name: the dialed server answers `not found`; nothing to dial or remember.
    if (!SERVER_NAME.test(server)) return { mux: dialed };
    let p = this.#peers.get(server);
    if (!p) this.#peers.set(server, p = { retryAt: 0, forwarded: 0 });
    if (p.conn && p.forwarded === 0) return { mux: p.conn.mux };
    if (!p.conn && !p.dialing && Date.now() >= p.retryAt) this.#dial(server, p);
    p.forwarded++;
    const peer = p;
    return { mux: dialed, settled: () => void peer.forwarded-- };
  }

  /** Servers reached over a direct connection now, as paths (`/X…`), sorted. */
  get direct(): string[] {
    return [...this.#peers].filter(([, p]) => p.conn).map(([s]) => `/${s}`).sort();
  }

  #dial(server: string, p: Peer): void {
    const abort = new AbortController();
    p.dialing = abort;
    const attempt = (async () => {
      try {
        const peek = await this.#dialed.mux.request(
          Op.PEEK,
          { path: [server] },
          { signal: abort.signal, timeoutMs: this.#o.dialTimeoutMs ?? 3000 },
        ) as { Addr?: unknown };
        if (typeof peek?.Addr !== "string") throw new Error("no address in peek");
        const conn = await dial(parseUrl(peek.Addr), {
          key: this.#o.key,
          role: "client",
          signal: abort.signal,
          config: this.#o.dialTimeoutMs ? { dialTimeoutMs: this.#o.dialTimeoutMs } : undefined,
        });
        if (this.#closed) return conn.close();
        p.conn = conn;
        void conn.closed.then(() => {
          if (p.conn !== conn) return;
          p.conn = undefined;
          p.retryAt = Date.now() + DIRECT_RETRY_MS;
        });
      } catch {
        // Unreachable from here, refused, or gone: keep forwarding for a while.
        p.retryAt = Date.now() + DIRECT_RETRY_MS;
      } finally {
        p.dialing = undefined;
      }
    })();
    this.#dials.add(attempt);
    void attempt.finally(() => this.#dials.delete(attempt));
  }

  /** Close every direct connection and stop dialing. */
  close(): void {
    this.#closed = true;
    for (const p of this.#peers.values()) {
      p.dialing?.abort();
      p.conn?.close();
      p.conn = undefined;
    }
  }

  /** Wait until dials under way have given up (after {@linkcode close}). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#dials]);
  }
}
