/**
 * The mesh: one dialed connection to every other member, full-state sync when a
 * connection opens, graceful leave, and failure detection through the connection
 * (EOF, or the keep-alive ping going silent). Feeds the {@linkcode MemberTable}.
 *
 * Each server calls others only over connections it dialed itself, and serves calls on
 * connections others dialed, so two peers never race to pick one connection.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { type Connection, dial } from "../net/conn.ts";
import { CircuitError } from "../net/errors.ts";
import type { Handler } from "../net/mux.ts";
import type { TransportConfig } from "../net/config.ts";
import { parseUrl } from "../net/url.ts";
import { type MemberInfo, Op, type SyncMessage } from "../net/wire.ts";
import { type MemberTable, TOMBSTONE_MS } from "./membership.ts";

/** What the mesh needs. */
export interface MeshOptions {
  /** The member table it maintains. */
  table: MemberTable;
  /** The cluster key. */
  key?: Uint8Array;
  /** Serves calls a peer makes on a connection we dialed. */
  handler: Handler;
  /** Mesh log. */
  log: Logger;
  /** Transport timings. */
  config?: Partial<TransportConfig>;
  /** Time to wait for leave announcements at shutdown, in ms. @default {500} */
  leaveTimeoutMs?: number;
  /** How often failed members are re-dialed (partition healing), in ms. @default {2000} */
  rejoinIntervalMs?: number;
  /** Time limit of the one redial after a connection is lost, in ms. @default {1000} */
  redialTimeoutMs?: number;
  /** How long a departed member's connection stays open for late replies, in ms. @default {1000} */
  retireGraceMs?: number;
}

/** Dialed connections to every member. */
export class Mesh {
  #o: MeshOptions;
  #conns = new Map<string, Connection>();
  #dialing = new Map<string, Promise<Connection>>();
  #stopping = false;
  #retry = new Map<string, { url: string; since: number }>();
  #joining = new Set<string>();
  #rejoinTimer: number;

  /** @param options table, key, handler, log */
  constructor(options: MeshOptions) {
    this.#o = options;
    this.#rejoinTimer = setInterval(
      () => this.#rejoin(),
      options.rejoinIntervalMs ?? 2000,
    ) as unknown as number;
    Deno.unrefTimer(this.#rejoinTimer);
    options.table.subscribe((e) => {
      if (e.type === "join") void this.#connect(e.member).catch(() => {});
      else this.#retire(e.member.id);
    });
  }

  /**
   * Connections for `stk`.
   *
   * @returns one line per peer connection
   */
  describe(): Array<Record<string, unknown>> {
    return [...this.#conns].map(([id, c]) => ({ Peer: `X${id}`, ...c.mux.stats }));
  }

  /**
   * The connection to a member, dialing it if needed.
   *
   * @param id server id
   * @returns the connection
   * @throws {CircuitError} `not found` when it is not a member; dial errors
   */
  peer(id: string): Promise<Connection> {
    const c = this.#conns.get(id);
    if (c && !c.mux.isClosed) return Promise.resolve(c);
    const m = this.#o.table.get(id);
    if (!m) {
      return Promise.reject(new CircuitError("not found", `Server "X${id}" is not a member`));
    }
    return this.#connect(m);
  }

  /**
   * Merge with the cluster of `url`: dial it and exchange full state.
   *
   * @param url a member of the other cluster
   * @param signal aborts the join
   * @throws {CircuitError} when it cannot be dialed or refuses
   */
  async join(url: string, signal?: AbortSignal): Promise<void> {
    const u = parseUrl(url);
    if (u.id === this.#o.table.self.id) return;
    const known = this.#o.table.get(u.id);
    if (known) {
      await this.#connect(known);
      return;
    }
    const conn = await this.#dial(u.id, url, signal);
    const reply = await this.#sync(conn, signal);
    // We reached it ourselves: that is proof of life even for a member we had lost.
    const self = reply.members.find((m) => m.id === u.id);
    if (self && this.#o.table.admit({ id: self.id, url: self.url, joined: String(self.joined) })) {
      this.#o.log.info(`member X${u.id} joined`);
    }
  }

  /**
   * A server announced itself (multicast discovery): join it unless it is known.
   *
   * @param url its URL
   */
  discovered(url: string): void {
    let id: string;
    try {
      id = parseUrl(url).id;
    } catch {
      return;
    }
    if (id === this.#o.table.self.id || this.#o.table.get(id) || this.#joining.has(id)) return;
    this.#joining.add(id);
    void this.join(url, AbortSignal.timeout(this.#o.config?.dialTimeoutMs ?? 3000))
      .catch((err) => this.#o.log.debug(`joining announced ${url} failed: ${err.message}`))
      .finally(() => this.#joining.delete(id));
  }

  /**
   * Counters for `stk`.
   *
   * @returns the members being re-dialed and joins under way
   */
  queues(): Record<string, number> {
    return {
      Rejoining: this.#retry.size,
      Joining: this.#joining.size,
      Dialing: this.#dialing.size,
    };
  }

  /**
   * Serve a peer's `member.sync`: merge its state, reply with ours.
   *
   * @param msg the peer's state
   * @returns our state
   */
  handleSync(msg: SyncMessage): SyncMessage {
    this.#merge(msg);
    return this.#state();
  }

  /**
   * Serve a peer's `member.leave`.
   *
   * @param id the leaving member
   */
  handleLeave(id: string): void {
    this.#o.log.info(`member X${id} left`);
    this.#o.table.remove(id, "left");
  }

  /**
   * A peer connected to us: make sure we know it (which dials it back).
   *
   * @param peer its self-description
   */
  handleInbound(peer: MemberInfo): void {
    if (this.#o.table.admit(peer)) this.#o.log.info(`member X${peer.id} joined`);
  }

  /** Announce our leave to every member, briefly, then close every connection. */
  async leave(): Promise<void> {
    this.#stopping = true;
    const self = this.#o.table.self.id;
    const signal = AbortSignal.timeout(this.#o.leaveTimeoutMs ?? 500);
    await Promise.allSettled(
      [...this.#conns.values()].map((c) => c.mux.request(Op.LEAVE, { id: self }, { signal })),
    );
    this.close();
  }

  /** Close every connection without announcing, flushing what is queued. */
  close(): void {
    this.#stopping = true;
    clearInterval(this.#rejoinTimer);
    for (const c of this.#conns.values()) void c.mux.goAway("server stopping");
    this.#conns.clear();
  }

  /**
   * A member left: replies still in flight on its connection (say, to the `suicide`
   * that made it leave) may arrive after its leave notice, so close after a grace.
   */
  #retire(id: string): void {
    const conn = this.#conns.get(id);
    if (!conn) return;
    this.#conns.delete(id);
    const t = setTimeout(() => conn.close(), this.#o.retireGraceMs ?? 1000);
    Deno.unrefTimer(t as unknown as number);
    void conn.closed.then(() => clearTimeout(t));
  }

  #state(): SyncMessage {
    return { members: this.#o.table.list(), gone: this.#o.table.gone() };
  }

  #merge(msg: SyncMessage): void {
    if (!msg || !Array.isArray(msg.members)) {
      throw new CircuitError("bad request", "Merging member state failed: malformed sync");
    }
    for (const m of msg.members) {
      if (typeof m?.id !== "string" || typeof m.url !== "string") continue;
      if (this.#o.table.add({ id: m.id, url: m.url, joined: String(m.joined) })) {
        this.#o.log.info(`member X${m.id} joined`);
      }
    }
  }

  async #sync(conn: Connection, signal?: AbortSignal): Promise<SyncMessage> {
    const reply = await conn.mux.request(Op.SYNC, this.#state(), { signal }) as SyncMessage;
    this.#merge(reply);
    return reply;
  }

  #connect(m: MemberInfo): Promise<Connection> {
    const c = this.#conns.get(m.id);
    if (c && !c.mux.isClosed) return Promise.resolve(c);
    let p = this.#dialing.get(m.id);
    if (p) return p;
    p = (async () => {
      try {
        const conn = await this.#dial(m.id, m.url);
        await this.#sync(conn).catch(() => {});
        return conn;
      } catch (err) {
        this.#failed(m.id, err);
        throw err;
      } finally {
        this.#dialing.delete(m.id);
      }
    })();
    this.#dialing.set(m.id, p);
    return p;
  }

  async #dial(id: string, url: string, signal?: AbortSignal): Promise<Connection> {
    const conn = await dial(parseUrl(url), {
      key: this.#o.key,
      role: "peer",
      from: this.#o.table.self,
      handler: this.#o.handler,
      signal,
      config: this.#o.config,
      log: (m) => this.#o.log.warn(m),
    });
    this.#conns.get(id)?.close();
    this.#conns.set(id, conn);
    void conn.closed.then((why) => this.#lost(id, url, conn, why));
    return conn;
  }

  async #lost(id: string, url: string, conn: Connection, why: CircuitError): Promise<void> {
    if (this.#conns.get(id) !== conn) return;
    this.#conns.delete(id);
    if (this.#stopping || !this.#o.table.get(id)) return;
    this.#o.log.debug(`connection to X${id} lost (${why.message}); redialing`);
    try {
      // A quick redial: a crashed peer refuses at once, a frozen one never answers.
      await this.#dial(id, url, AbortSignal.timeout(this.#o.redialTimeoutMs ?? 1000));
    } catch (err) {
      this.#failed(id, err, url);
    }
  }

  #failed(id: string, err: unknown, url?: string): void {
    if (this.#stopping) return;
    if (this.#o.table.remove(id, "failed")) {
      this.#o.log.info(`member X${id} failed: ${(err as Error).message}`);
    }
    // Keep re-dialing a failed member for a while: a partition that heals merges again.
    if (url && !(err instanceof CircuitError && err.code === "not found")) {
      this.#retry.set(id, { url, since: Date.now() });
    }
  }

  /** Re-dial failed members; drop those that are back, restarted, or gone too long. */
  #rejoin(): void {
    const cutoff = Date.now() - TOMBSTONE_MS;
    for (const [id, { url, since }] of this.#retry) {
      if (this.#stopping || since < cutoff || this.#o.table.get(id)) {
        this.#retry.delete(id);
        continue;
      }
      if (this.#joining.has(id)) continue;
      this.#joining.add(id);
      void this.join(url, AbortSignal.timeout(this.#o.redialTimeoutMs ?? 1000))
        .then(() => this.#retry.delete(id))
        .catch((err) => {
          // A URL that names an earlier incarnation will never answer again.
          if (err instanceof CircuitError && err.code === "not found") this.#retry.delete(id);
        })
        .finally(() => this.#joining.delete(id));
    }
  }
}
