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

import { type TransportConfig, transportConfig } from "../net/config.ts";
import { type Connection, dial } from "../net/conn.ts";
import type { Mux } from "../net/mux.ts";
import { isServerName, parseUrl } from "../net/url.ts";
import { Op } from "../net/wire/mod.ts";

/**
 * How long a server whose direct dial failed, or whose direct connection closed, is
 * reached only through the dialed server, in ms.
 */
export const DIRECT_RETRY_MS = 30_000;

/** Where one call goes, and what to tell the routes when its reply is in. */
export interface Route {
  /** The connection's mux. */
  mux: Mux;
  /** Call when the call's reply has settled (forwarded calls count against switching). */
  settled?: () => void;
}

interface Peer {
  /** The direct connection, once up. */
  conn?: Connection;
  /** Its route, made once. */
  direct?: Route;
  /** The forwarded route, made once: its `settled` counts the call out. */
  forward: Route;
  dialing?: AbortController;
  retryAt: number;
  /** Forwarded calls whose reply is not in. */
  forwarded: number;
}

/** Options of {@linkcode Routes}. */
export interface RoutesOptions {
  /** Whether to dial other servers at all; false forwards every call. */
  direct: boolean;
  /** The cluster key. */
  key?: Uint8Array;
  /** Transport settings of direct dials, as for the dialed connection. */
  config?: Partial<TransportConfig>;
}

/** The client's connections: the dialed one, and direct ones to other servers. */
export class Routes {
  #dialed: Connection;
  #dialedRoute: Route;
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
    this.#dialedRoute = { mux: dialed.mux };
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
    if (!this.#o.direct || this.#closed || !server || server === this.#self) {
      return this.#dialedRoute;
    }
    let p = this.#peers.get(server);
    if (!p) {
      // A malformed name: the dialed server answers `not found`; nothing to dial or keep.
      if (!isServerName(server)) return this.#dialedRoute;
      const peer: Peer = {
        forward: { mux: this.#dialed.mux, settled: () => void peer.forwarded-- },
        retryAt: 0,
        forwarded: 0,
      };
      this.#peers.set(server, p = peer);
    }
    if (p.conn?.mux.isClosed) this.#lost(p, p.conn); // its calls have failed already
    if (p.direct && p.forwarded === 0) return p.direct;
    if (!p.conn && !p.dialing && Date.now() >= p.retryAt) this.#dial(server, p);
    p.forwarded++;
    return p.forward;
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
          { signal: abort.signal, timeoutMs: transportConfig(this.#o.config).dialTimeoutMs },
        ) as { Addr?: unknown };
        if (typeof peek?.Addr !== "string") throw new Error("no address in peek");
        const url = parseUrl(peek.Addr);
        if (`X${url.id}` !== server) throw new Error("the peek names another server");
        const conn = await dial(url, {
          key: this.#o.key,
          role: "client",
          signal: abort.signal,
          config: this.#o.config,
        });
        if (this.#closed) return conn.close();
        p.conn = conn;
        p.direct = { mux: conn.mux };
        void conn.closed.then(() => this.#lost(p, conn));
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

  /** Forget a direct connection that closed; forward for a while. */
  #lost(p: Peer, conn: Connection): void {
    if (p.conn !== conn) return;
    p.conn = p.direct = undefined;
    p.retryAt = Date.now() + DIRECT_RETRY_MS;
  }

  /** Close every direct connection and stop dialing. */
  close(): void {
    this.#closed = true;
    for (const p of this.#peers.values()) {
      p.dialing?.abort();
      p.conn?.close();
      p.conn = p.direct = undefined;
    }
  }

  /** Wait until dials under way have given up (after {@linkcode close}). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#dials]);
  }
}
