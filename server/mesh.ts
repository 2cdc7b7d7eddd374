/**
 * The mesh: dialed connections to other members, used for calls between servers and as
 * evidence of failure. The membership layer (SWIM, `net/membership/`) decides who is a
 * member; the mesh follows its join and leave events, carries its push-pull when a server
 * joins another, and hands it what TCP reveals: a port that refuses (the process is gone)
 * or a connection that went silent (suspect it).
 *
 * Each server keeps a connection to the next few members in id order (its watch ring,
 * {@linkcode WATCHED}), so every member is watched by that many others: when one is
 * killed, its watchers see the close, the redial is refused, and the death is sent to
 * every member within milliseconds. Other members are dialed when a call needs them. (A connection to
 * every member made a join cost a keyed handshake per pair: at 25 members, most of the
 * CPU of a join storm.) A member that misses a probe while no connection to it is open is
 * dialed then. Failed members are re-dialed now and then, so a healed partition merges
 * again with no command.
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
import { type MemberTable, REJOIN_MS } from "./membership.ts";
import { admitLocalListener } from "./local_peer.ts";

/**
 * Keep-alive of connections between servers. The membership layer watches members (and a
 * member it declares failed has its connection closed), so a ping here only has to catch
 * a TCP path that died silently between two live members: rare on a LAN, and then a call
 * over it times out anyway. A ping every few seconds on every connection made idle
 * traffic grow with the cluster (at 5 s, when every pair was connected: about 1.0 KB/s
 * per server with 10 members, 3.5 KB/s with 50); every 30 s it is a sixth.
 */
export const PEER_KEEPALIVE: Partial<TransportConfig> = Object.freeze({
  pingIntervalMs: 30_000,
  deadAfterMs: 75_000,
});

/** Most failed members re-dialed at once. */
export const MAX_REJOINING = 1024;

/**
 * How many members each server watches through a connection (the next ones after it in
 * id order), and so how many watchers each member has.
 */
export const WATCHED = 3;

/**
 * How long a connection dialed for calls stays open once no call has asked for it and
 * none is in flight, in ms. (Without a limit, one recursive `ls /...` left every server
 * connected to every other for as long as both lived.)
 */
export const CALL_IDLE_MS = 60_000;

/** Longest random wait before joining a server heard through discovery, in ms. */
export const DISCOVER_JITTER_MS = 100;

/** `setTimeout` that does not keep the process alive: the mesh's timers are housekeeping. */
function unrefTimeout(fn: () => void, ms: number): number {
  const t = setTimeout(fn, ms) as unknown as number;
  Deno.unrefTimer(t);
  return t;
}

/** What the mesh needs from the membership layer (a `Memberlist` fits). */
export interface MeshMembership {
  /** Our full state, sent when we join through a connection. */
  state(): unknown[];
  /** Merge the state a peer answered with. */
  merge(remote: unknown, from: string): void;
  /** Serve a peer's join: merge its state, answer with ours. */
  handleSync(remote: unknown, from: string): unknown[];
  /** Direct evidence that a member's process is gone. */
  failed(id: string): void;
  /** A connection to a member went silent. */
  suspect(id: string): void;
}

/** What the mesh needs. */
export interface MeshOptions {
  /** The member table it follows. */
  table: MemberTable;
  /** The membership layer that feeds the table. */
  membership: MeshMembership;
  /** The cluster key. */
  key?: Uint8Array;
  /** Serves calls a peer makes on a connection we dialed. */
  handler: Handler;
  /** Mesh log. */
  log: Logger;
  /** Transport timings. */
  config?: Partial<TransportConfig>;
  /** How often failed members are re-dialed (partition healing), in ms. @default {2000} */
  rejoinIntervalMs?: number;
  /** Time limit of the one redial after a connection is lost, in ms. @default {1000} */
  redialTimeoutMs?: number;
  /** How long a departed member's connection stays open for late replies, in ms. @default {1000} */
  retireGraceMs?: number;
  /** How long an unused connection dialed for calls stays open, in ms. @default {CALL_IDLE_MS} */
  callIdleMs?: number;
  /** Longest random wait before joining an announced server. @default {DISCOVER_JITTER_MS} */
  discoverJitterMs?: number;
  /** Members watched through a connection. @default {WATCHED} */
  watched?: number;
  /**
   * The watch ring is updated once membership has not changed for this long, in ms, so a
   * burst of joins dials once, not once per join. @default {100}
   */
  ringSettleMs?: number;
  /** Longest wait for membership to settle before the watch ring is updated anyway, in ms. @default {1000} */
  ringMaxWaitMs?: number;
}

/** Dialed connections: to the members we watch, and to those calls need. */
export class Mesh {
  #o: MeshOptions;
  #conns = new Map<string, Connection>();
  #dialing = new Map<string, Promise<Connection>>();
  #stopping = false;
  #retry = new Map<string, { url: string; since: number }>();
  #joining = new Set<string>();
  #rejoinTimer: number | undefined;
  /** Members dialed for calls, with when a call last asked for the connection. */
  #called = new Map<string, number>();
  #idleTimer: number | undefined;
  #watching = new Set<string>();
  #ringTimer: number | undefined;
  #ringDueSince = 0;
  #checkingPorts = new Set<string>();
  #discoverTimers = new Set<number>();

  /** @param options table, key, handler, log */
  constructor(options: MeshOptions) {
    this.#o = options;
    options.table.subscribe((e) => {
      this.#updateRingSoon();
      if (e.type === "join") {
        this.#retry.delete(e.member.id);
        return;
      }
      this.#called.delete(e.member.id);
      this.#retire(e.member.id);
      // Keep re-dialing a failed member for a while: a partition that heals merges again.
      if (e.reason === "failed" && !this.#stopping) {
        this.#retry.set(e.member.id, { url: e.member.url, since: Date.now() });
        // Bounded: the oldest failure is forgotten first.
        if (this.#retry.size > MAX_REJOINING) this.#retry.delete(this.#retry.keys().next().value!);
        this.#armRejoin();
      }
    });
  }

  /**
   * Connections for `stk`.
   *
   * @returns one line per peer connection
   */
  describe(): Array<Record<string, unknown>> {
    return [...this.#conns].map(([id, c]) => ({
      Peer: `X${id}`,
      Watched: this.#watching.has(id),
      ...c.mux.stats,
    }));
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
    this.#called.set(id, Date.now());
    this.#armIdleSweep();
    return this.#connect(m);
  }

  /**
   * A member missed a direct probe. With a connection open to it, that connection's end
   * will tell; without one, dial it now: a refused port proves the process gone and it is
   * declared failed at once, as for any dial. Anything else leaves it to the probes and
   * suspicion. A connection made only for this is closed again.
   *
   * @param id the member
   */
  check(id: string): void {
    const m = this.#o.table.get(id);
    if (this.#stopping || !m) return;
    // A failure is reported by #connect itself.
    void this.#connect(m).then(() => this.#retireUnneeded(id), () => {});
  }

  /**
   * A member was accused (it became suspect, or someone claimed it dead). With a
   * connection open to it, that connection's end will tell. Without one, connect to its
   * port with no handshake: a refused connection proves the process gone, and it is
   * declared failed at once; anything else proves nothing. Cheap enough for every
   * accusation: no keys are computed, and the server logs such a connection at debug level
   * only. (With watchers only, a member that missed the gossip of a `kill -9`, or took a
   * death claimed at an older incarnation as a suspicion, waited out the suspicion: 1.5 to
   * 3.3 s in about one `kill -9` of twenty.)
   *
   * @param id the member
   */
  checkPort(id: string): void {
    const m = this.#o.table.get(id);
    if (this.#stopping || !m || this.#checkingPorts.has(id)) return;
    const open = this.#conns.get(id);
    if (open && !open.mux.isClosed) return;
    let u: ReturnType<typeof parseUrl>;
    try {
      u = parseUrl(m.url);
    } catch {
      return;
    }
    this.#checkingPorts.add(id);
    const signal = AbortSignal.timeout(this.#o.redialTimeoutMs ?? 1000);
    Deno.connect({ hostname: u.host, port: u.port, signal } as Deno.ConnectOptions).then(
      (c) => c.close(),
      (err) => {
        if (!(err instanceof Deno.errors.ConnectionRefused)) return;
        if (this.#stopping || !this.#o.table.get(id)) return;
        this.#o.log.info(`member X${id} is gone: its port ${u.port} refuses connections`);
        this.#o.membership.failed(id);
      },
    ).finally(() => this.#checkingPorts.delete(id));
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
    const body: SyncMessage = { records: this.#o.membership.state() };
    const reply = await conn.mux.request(Op.SYNC, body, { signal }) as SyncMessage;
    this.#o.membership.merge(reply?.records, `X${u.id}`);
  }

  /**
   * A server announced itself (multicast discovery): join it unless it is known, after a
   * random wait of up to `discoverJitterMs`, and only if it is still unknown then. When
   * many servers start at once, each hears every other: joining at once made a keyed
   * handshake and a full-state exchange per pair, while after the first few joins gossip
   * makes the rest known.
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
    if (this.#stopping || id === this.#o.table.self.id || this.#o.table.get(id)) return;
    if (this.#joining.has(id)) return;
    this.#joining.add(id);
    const jitter = Math.random() * (this.#o.discoverJitterMs ?? DISCOVER_JITTER_MS);
    const timer = unrefTimeout(() => {
      this.#discoverTimers.delete(timer);
      if (this.#stopping || this.#o.table.get(id)) {
        this.#joining.delete(id);
        return;
      }
      void this.join(url, AbortSignal.timeout(this.#o.config?.dialTimeoutMs ?? 3000))
        .catch((err) => this.#o.log.debug(`joining announced ${url} failed: ${err.message}`))
        .finally(() => this.#joining.delete(id));
    }, jitter);
    this.#discoverTimers.add(timer);
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
   * @param from who sent it
   * @returns our state
   */
  handleSync(msg: SyncMessage, from: string): SyncMessage {
    return { records: this.#o.membership.handleSync(msg?.records, from) };
  }

  /** Close every connection, flushing what is queued (the membership layer announces). */
  close(): void {
    this.#stopping = true;
    clearTimeout(this.#rejoinTimer);
    clearTimeout(this.#ringTimer);
    clearTimeout(this.#idleTimer);
    for (const t of this.#discoverTimers) clearTimeout(t);
    this.#discoverTimers.clear();
    for (const c of this.#conns.values()) void c.mux.goAway("server stopping");
    this.#conns.clear();
  }

  /** Sweep idle call connections later, unless a sweep is due. */
  #armIdleSweep(): void {
    if (this.#idleTimer !== undefined || this.#stopping) return;
    const idleMs = this.#o.callIdleMs ?? CALL_IDLE_MS;
    this.#idleTimer = unrefTimeout(() => {
      this.#idleTimer = undefined;
      this.#sweepIdle(idleMs);
    }, Math.max(1, idleMs / 2));
  }

  /** Retire call connections nobody asked for in `idleMs` that carry no call now. */
  #sweepIdle(idleMs: number): void {
    if (this.#stopping) return;
    const cutoff = Date.now() - idleMs;
    for (const [id, at] of this.#called) {
      if (at > cutoff) continue;
      const c = this.#conns.get(id);
      if (c && !c.mux.isClosed && c.mux.stats.callsOut + c.mux.stats.callsIn > 0) continue;
      this.#called.delete(id);
      this.#retireUnneeded(id);
    }
    if (this.#called.size > 0) this.#armIdleSweep();
  }

  /**
   * Update the watch ring once membership has been quiet for `ringSettleMs`, or
   * `ringMaxWaitMs` after the first change, whichever comes first.
   */
  #updateRingSoon(): void {
    if (this.#stopping) return;
    const now = Date.now();
    if (this.#ringTimer === undefined) this.#ringDueSince = now;
    clearTimeout(this.#ringTimer);
    const quiet = this.#o.ringSettleMs ?? 100;
    const left = this.#ringDueSince + (this.#o.ringMaxWaitMs ?? 1000) - now;
    this.#ringTimer = unrefTimeout(() => {
      this.#ringTimer = undefined;
      this.#updateRing();
    }, Math.max(0, Math.min(quiet, left)));
  }

  /**
   * Dial the members we watch (the next ones after us in id order); retire connections
   * that neither watch a member nor carried calls to it.
   */
  #updateRing(): void {
    if (this.#stopping) return;
    const members = this.#o.table.list();
    const at = members.findIndex((m) => m.id === this.#o.table.self.id);
    const k = Math.min(this.#o.watched ?? WATCHED, members.length - 1);
    const ring = new Set<string>();
    for (let i = 1; i <= k; i++) ring.add(members[(at + i) % members.length].id);
    this.#watching = ring;
    for (const id of ring) void this.#connect(this.#o.table.get(id)!).catch(() => {});
    for (const id of [...this.#conns.keys()]) this.#retireUnneeded(id);
  }

  /** Retire the connection to a member unless we watch it or calls use it. */
  #retireUnneeded(id: string): void {
    if (!this.#watching.has(id) && !this.#called.has(id)) this.#retire(id);
  }

  /**
   * A member left, or its connection is no longer needed: replies still in flight on it
   * (say, to the `suicide` that made it leave) may arrive after its leave notice, so close
   * after a grace.
   */
  #retire(id: string): void {
    const conn = this.#conns.get(id);
    if (!conn) return;
    this.#conns.delete(id);
    const t = unrefTimeout(() => conn.close(), this.#o.retireGraceMs ?? 1000);
    void conn.closed.then(() => clearTimeout(t));
  }

  #connect(m: MemberInfo): Promise<Connection> {
    const c = this.#conns.get(m.id);
    if (c && !c.mux.isClosed) return Promise.resolve(c);
    let p = this.#dialing.get(m.id);
    if (p) return p;
    p = (async () => {
      try {
        return await this.#dial(m.id, m.url);
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

  async #lost(id: string, url: string, conn: Connection, why: CircuitError): Promise<void> {
    if (this.#conns.get(id) !== conn) return;
    this.#conns.delete(id);
    if (this.#stopping || !this.#o.table.get(id)) return;
    this.#o.log.debug(`connection to X${id} lost (${why.message}); redialing`);
    try {
      // A quick redial: a crashed peer refuses at once, a frozen one never answers.
      await this.#dial(id, url, AbortSignal.timeout(this.#o.redialTimeoutMs ?? 1000));
    } catch (err) {
      this.#failed(id, err);
    }
  }

  /**
   * A member could not be reached. A refused port or a newer process at its address is
   * proof that it is gone; anything else (a timeout, a reset) only makes it suspect, and
   * the membership layer's probes decide.
   */
  #failed(id: string, err: unknown): void {
    if (this.#stopping || !this.#o.table.get(id)) return;
    const why = (err as Error).message;
    if (isGone(err)) {
      this.#o.log.info(`member X${id} is gone: ${why}`);
      this.#o.membership.failed(id);
    } else {
      this.#o.log.debug(`member X${id} is unreachable, suspecting it: ${why}`);
      this.#o.membership.suspect(id);
    }
  }

  /** Run the re-dial round later, unless one is due; idle servers wake for nothing. */
  #armRejoin(): void {
    if (this.#rejoinTimer !== undefined || this.#stopping) return;
    this.#rejoinTimer = unrefTimeout(() => {
      this.#rejoinTimer = undefined;
      this.#rejoin();
      if (this.#retry.size > 0) this.#armRejoin();
    }, this.#o.rejoinIntervalMs ?? 2000);
  }

  /** Re-dial failed members; drop those that are back, restarted, or gone too long. */
  #rejoin(): void {
    const cutoff = Date.now() - REJOIN_MS;
    for (const [id, { url, since }] of this.#retry) {
      if (this.#stopping || since < cutoff || this.#o.table.get(id)) {
        this.#retry.delete(id);
        continue;
      }
      if (this.#joining.has(id)) continue;
      this.#joining.add(id);
      // Success is not enough to stop: the membership layer decides whether it is back.
      void this.join(url, AbortSignal.timeout(this.#o.redialTimeoutMs ?? 1000))
        .catch((err) => {
          // A URL that names an earlier incarnation will never answer again.
          if (err instanceof CircuitError && err.code === "not found") this.#retry.delete(id);
        })
        .finally(() => this.#joining.delete(id));
    }
  }
}

/** Whether a dial error proves the process is gone: refused, or a newer one answers. */
function isGone(err: unknown): boolean {
  if (!(err instanceof CircuitError)) return false;
  if (err.code === "not found") return true;
  return err.cause instanceof Deno.errors.ConnectionRefused;
}
