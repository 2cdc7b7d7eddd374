/**
 * The mesh's connection pool: at most one dialed connection per member, dials to the same
 * member shared while under way, one quick redial when a connection is lost, and a grace
 * before a connection that is no longer needed is closed. Which members to connect to is
 * the mesh's decision; what a failed dial proves is the failure evidence's.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { Clock } from "../../net/clock.ts";
import { type Connection, dial } from "../../net/conn.ts";
import type { CircuitError } from "../../net/errors.ts";
import type { Handler } from "../../net/mux.ts";
import type { TransportConfig } from "../../net/config.ts";
import { parseUrl } from "../../net/url.ts";
import type { MemberInfo } from "../../net/wire/mod.ts";
import { PEER_KEEPALIVE } from "../config.ts";
import { admitLocalListener } from "../local_peer.ts";

/** What the pool needs. */
export interface ConnectionPoolOptions {
  /** This server, sent in the handshake. */
  self: MemberInfo;
  /** The cluster key; without one, a loopback peer must be our own user's. */
  key?: Uint8Array;
  /** Serves calls a peer makes on a connection we dialed. */
  handler: Handler;
  /** Transport timings (the peer keep-alive, {@linkcode PEER_KEEPALIVE}, is laid over them). */
  config?: Partial<TransportConfig>;
  /** Mesh log. */
  log: Logger;
  /** Timers for the retire grace. */
  clock: Clock;
  /** How long a connection no longer needed stays open for late replies, in ms. */
  retireGraceMs: number;
  /** Time limit of the one redial after a connection is lost, in ms. */
  redialTimeoutMs: number;
  /** Whether a server is still a member (a lost connection to a non-member is not redialed). */
  isMember(id: string): boolean;
  /** A dial made by {@linkcode ConnectionPool.connect} or a redial failed. */
  onUnreachable(id: string, err: unknown): void;
}

/** Dialed connections, by member id. */
export class ConnectionPool {
  #o: ConnectionPoolOptions;
  #conns = new Map<string, Connection>();
  #dialing = new Map<string, Promise<Connection>>();
  #closed = false;

  /** @param options who we are, how to dial, what to tell of failures */
  constructor(options: ConnectionPoolOptions) {
    this.#o = options;
  }

  /** Dials under way. */
  get dialing(): number {
    return this.#dialing.size;
  }

  /**
   * The open connection to a member.
   *
   * @param id the member
   * @returns the connection, or undefined when none is open
   */
  open(id: string): Connection | undefined {
    const c = this.#conns.get(id);
    return c && !c.mux.isClosed ? c : undefined;
  }

  /**
   * The pooled connections, open or closing.
   *
   * @returns `[member id, connection]` pairs
   */
  entries(): Array<[string, Connection]> {
    return [...this.#conns];
  }

  /**
   * The connection to a member, dialing it (once, however often asked) if none is open. A
   * failed dial is reported through `onUnreachable` as well as thrown.
   *
   * @param m the member
   * @returns the connection
   * @throws {CircuitError} the dial's error
   */
  connect(m: MemberInfo): Promise<Connection> {
    const c = this.open(m.id);
    if (c) return Promise.resolve(c);
    let p = this.#dialing.get(m.id);
    if (p) return p;
    p = (async () => {
      try {
        return await this.dial(m.id, m.url);
      } catch (err) {
        this.#o.onUnreachable(m.id, err);
        throw err;
      } finally {
        this.#dialing.delete(m.id);
      }
    })();
    this.#dialing.set(m.id, p);
    return p;
  }

  /**
   * Dial a server and pool the connection under its id, replacing any other.
   *
   * @param id the server's id
   * @param url its URL
   * @param signal aborts the dial
   * @returns the connection
   * @throws {CircuitError} when it cannot be dialed or refuses
   */
  async dial(id: string, url: string, signal?: AbortSignal): Promise<Connection> {
    const conn = await dial(parseUrl(url), {
      key: this.#o.key,
      role: "peer",
      from: this.#o.self,
      handler: this.#o.handler,
      signal,
      config: { ...this.#o.config, ...PEER_KEEPALIVE },
      log: (m) => this.#o.log.warn(m),
      // Keyless, nothing proves who answers: a loopback peer must be our own user's.
      ...(this.#o.key
        ? {}
        : { admit: ({ remote, local }) => admitLocalListener({ remote, local }) }),
    });
    this.#conns.get(id)?.close();
    this.#conns.set(id, conn);
    void conn.closed.then((why) => this.#lost(id, url, conn, why));
    return conn;
  }

  /**
   * Take a member's connection out of the pool and close it after the grace: replies
   * still in flight on it (say, to the `suicide` that made the member leave) may arrive
   * after its leave notice.
   *
   * @param id the member
   */
  retire(id: string): void {
    const conn = this.#conns.get(id);
    if (!conn) return;
    this.#conns.delete(id);
    const clock = this.#o.clock;
    const t = clock.setTimeout(() => conn.close(), this.#o.retireGraceMs);
    void conn.closed.then(() => clock.clearTimeout(t));
  }

  /** Close every connection, flushing what is queued; nothing is redialed after. */
  close(): void {
    this.#closed = true;
    for (const c of this.#conns.values()) void c.mux.goAway("server stopping");
    this.#conns.clear();
  }

  /** A pooled connection closed: redial once, quickly; a failure is evidence. */
  async #lost(id: string, url: string, conn: Connection, why: CircuitError): Promise<void> {
    if (this.#conns.get(id) !== conn) return;
    this.#conns.delete(id);
    if (this.#closed || !this.#o.isMember(id)) return;
    this.#o.log.debug(`connection to X${id} lost (${why.message}); redialing`);
    try {
      // A quick redial: a crashed peer refuses at once, a frozen one never answers.
      await this.dial(id, url, AbortSignal.timeout(this.#o.redialTimeoutMs));
    } catch (err) {
      this.#o.onUnreachable(id, err);
    }
  }
}
