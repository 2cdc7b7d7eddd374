/**
 * The mesh: dialed connections to other members, used for calls between servers and as
 * evidence of failure. It composes a connection pool, the watch ring, the idle sweep of
 * call connections, the rejoiner and the failure evidence, and follows the member table.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { type Clock, HOUSEKEEPING_CLOCK } from "../../net/clock.ts";
import type { Connection } from "../../net/conn.ts";
import { CircuitError } from "../../net/errors.ts";
import type { Handler } from "../../net/mux.ts";
import { DEFAULT_TRANSPORT_CONFIG, type TransportConfig } from "../../net/config.ts";
import { parseUrl } from "../../net/url.ts";
import { Op, type SyncMessage } from "../../net/wire/mod.ts";
import { type MeshConfig, meshConfig } from "../config.ts";
import type { MembershipEvent, MemberTable } from "../membership.ts";
import { CallConnections } from "./calls.ts";
import { type EvidenceSink, FailureEvidence } from "./evidence.ts";
import { ConnectionPool } from "./pool.ts";
import { Joiner } from "./joiner.ts";
import { Rejoiner } from "./rejoiner.ts";
import { ringUpdateDelayMs, watchRing } from "./ring.ts";

/** What the mesh needs from the membership layer (a `Memberlist` fits). */
export interface MeshMembership extends EvidenceSink {
  /** Our full state, sent when we join through a connection. */
  state(): unknown[];
  /** Merge the state a peer answered with. */
  merge(remote: unknown, from: string): void;
  /** Serve a peer's join: merge its state, answer with ours. */
  handleSync(remote: unknown, from: string): unknown[];
  /**
   * Join through members' membership (UDP) addresses, whose ids we do not know: a
   * push-pull over signed datagrams. Needed for `HOST:PORT` seeds only.
   */
  join?(
    seeds: readonly { host: string; port: number }[],
    options: { signal?: AbortSignal },
  ): Promise<number>;
}

/** What the mesh needs; the timing fields override `DEFAULT_MESH_CONFIG` (`server/config.ts`). */
export interface MeshOptions extends Partial<MeshConfig> {
  /** The member table it follows. */
  table: MemberTable;
  /** The cluster key. */
  key?: Uint8Array;
  /** Mesh log. */
  log: Logger;
  /** Transport timings. */
  config?: Partial<TransportConfig>;
  /** Timers. @default {HOUSEKEEPING_CLOCK} (the real clock; timers do not hold the process) */
  clock?: Clock;
}

/**
 * What the mesh serves, given once the layers above it exist (see
 * {@linkcode Mesh.serve}).
 */
export interface MeshLinks {
  /** The membership layer that feeds the table; evidence goes to it. */
  membership: MeshMembership;
  /** Serves calls a peer makes on a connection we dialed. */
  handler: Handler;
}

/** Refuses calls until the mesh serves (no dial happens before it does). */
const NOT_SERVING: Handler = () =>
  Promise.reject(new CircuitError("busy", "Serving a call failed: the server is still starting"));

/** Dialed connections: to the members we watch, and to those calls need. */
export class Mesh {
  #table: MemberTable;
  #config: MeshConfig;
  #clock: Clock;
  #links: MeshLinks | undefined;
  #stopping = false;
  #pool: ConnectionPool;
  #calls: CallConnections;
  #rejoiner: Rejoiner;
  #evidence: FailureEvidence;
  #watching = new Set<string>();
  #ringTimer: number | undefined;
  #ringDueSince = 0;
  #joiner: Joiner | undefined;
  #log: Logger;

  /**
   * Make a mesh; it follows the table and dials once {@linkcode Mesh.serve} is called.
   *
   * @param options table, key, log, timings
   * @throws {CircuitError} `bad request` for a bad timing
   */
  constructor(options: MeshOptions) {
    const table = this.#table = options.table;
    const config = this.#config = meshConfig(options);
    const clock = this.#clock = options.clock ?? HOUSEKEEPING_CLOCK;
    const log = this.#log = options.log;
    const isMember = (id: string) => table.get(id) !== undefined;
    this.#evidence = new FailureEvidence({
      member: (id) => table.get(id),
      sink: () => this.#links?.membership,
      stopping: () => this.#stopping,
      checkTimeoutMs: config.redialTimeoutMs,
      log,
    });
    this.#pool = new ConnectionPool({
      self: table.self,
      key: options.key,
      handler: (call) => (this.#links?.handler ?? NOT_SERVING)(call),
      config: options.config,
      log,
      clock,
      retireGraceMs: config.retireGraceMs,
      redialTimeoutMs: config.redialTimeoutMs,
      isMember,
      onUnreachable: (id, err) => this.#evidence.unreachable(id, err),
    });
    this.#calls = new CallConnections({
      clock,
      idleMs: config.callIdleMs,
      inUse: (id) => {
        const s = this.#pool.open(id)?.mux.stats;
        return s !== undefined && s.callsOut + s.callsIn > 0;
      },
      release: (id) => this.#retireUnneeded(id),
    });
    this.#rejoiner = new Rejoiner({
      selfId: table.self.id,
      isMember,
      join: (url, signal) => this.join(url, signal),
      config,
      dialTimeoutMs: options.config?.dialTimeoutMs ?? DEFAULT_TRANSPORT_CONFIG.dialTimeoutMs,
      clock,
      log,
    });
  }

  /**
   * Start serving: follow the member table, report evidence to `links.membership` and
   * serve peers' calls with `links.handler`. (The layers above the mesh use it, so they
   * are made after it and linked here.)
   *
   * @param links the membership layer and the call handler
   */
  serve(links: MeshLinks): void {
    this.#links = links;
    this.#table.subscribe((e) => this.#memberChanged(e));
  }

  /**
   * Connections for `stk`.
   *
   * @returns one line per peer connection
   */
  describe(): Array<Record<string, unknown>> {
    return this.#pool.entries().map(([id, c]) => ({
      Peer: `X${id}`,
      Watched: this.#watching.has(id),
      ...c.mux.stats,
    }));
  }

  /**
   * Counters for `stk`.
   *
   * @returns the members being re-dialed, joins and dials under way
   */
  queues(): Record<string, number> {
    return {
      Rejoining: this.#rejoiner.rejoining,
      Joining: this.#rejoiner.joining,
      Dialing: this.#pool.dialing,
    };
  }

  /**
   * The connection to a member, dialing it if needed.
   *
   * @param id server id
   * @returns the connection
   * @throws {CircuitError} `not found` when it is not a member; dial errors
   */
  peer(id: string): Promise<Connection> {
    const c = this.#pool.open(id);
    if (c) return Promise.resolve(c);
    const m = this.#table.get(id);
    if (!m) {
      return Promise.reject(new CircuitError("not found", `Server "X${id}" is not a member`));
    }
    this.#calls.used(id);
    return this.#pool.connect(m);
  }

  /**
   * A member missed a direct probe. With a connection open to it, that connection's end
   * will tell; without one, connect to its port with no handshake (as
   * {@linkcode Mesh.checkPort}): a refused port proves the process gone and it is
   * declared failed at once; anything else is left to the probes and suspicion. It made a
   * full keyed handshake before (and dropped the connection again): at 100 members every
   * unanswered probe of a busy member cost both sides key work, which fed the storms.
   *
   * @param id the member
   * @returns once the check is over (it never rejects)
   */
  async check(id: string): Promise<void> {
    if (this.#stopping || !this.#table.get(id)) return;
    await this.checkPort(id);
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
   * @returns once the check is over (it never rejects)
   */
  async checkPort(id: string): Promise<void> {
    if (this.#pool.open(id)) return;
    await this.#evidence.checkPort(id);
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
    if (u.id === this.#table.self.id) return;
    const known = this.#table.get(u.id);
    if (known) {
      await this.#pool.connect(known);
      return;
    }
    const membership = this.#serving();
    const conn = await this.#pool.dial(u.id, url, signal);
    const body: SyncMessage = { records: membership.state() };
    const reply = await conn.mux.request(Op.SYNC, body, { signal }) as SyncMessage;
    membership.merge(reply?.records, `X${u.id}`);
  }

  /**
   * Join through seeds at start, retrying with backoff until one answers or the mesh
   * closes (see `Joiner`). A seed is a member's URL (joined over TCP, as
   * {@linkcode Mesh.join}) or `HOST:PORT` (joined over UDP: a push-pull of signed
   * datagrams, which needs no server id, so the TCP handshake's target check is never
   * bypassed).
   *
   * @param seeds URLs or `HOST:PORT`s
   * @param options time limit of each attempt, in ms
   * @returns the joiner (its `firstRound` and `done` tell how it goes)
   */
  joinSeeds(seeds: readonly string[], options: { attemptTimeoutMs: number }): Joiner {
    this.#joiner?.close();
    this.#joiner = new Joiner({
      seeds,
      join: (seed, signal) => this.#joinSeed(seed, signal),
      attemptTimeoutMs: options.attemptTimeoutMs,
      clock: this.#clock,
      log: this.#log,
      permanent: isPermanent,
    });
    return this.#joiner;
  }

  async #joinSeed(seed: string, signal: AbortSignal): Promise<void> {
    if (seed.includes("://")) return await this.join(seed, signal);
    const m = /^\[?([^\[\]]+?)\]?:(\d{1,5})$/.exec(seed);
    if (!m || Number(m[2]) > 65_535) {
      throw new CircuitError("bad request", `Joining ${seed} failed: expected a URL or HOST:PORT`);
    }
    const membership = this.#serving();
    if (!membership.join) {
      throw new CircuitError("bad request", `Joining ${seed} failed: needs a member's URL`);
    }
    const host = await resolveHost(m[1]);
    await membership.join([{ host, port: Number(m[2]) }], { signal });
  }

  /**
   * A server announced itself (multicast discovery): join it, unless gossip makes it
   * known first (see `Rejoiner.discovered`).
   *
   * @param url its URL
   */
  discovered(url: string): void {
    if (this.#stopping) return;
    this.#rejoiner.discovered(url);
  }

  /**
   * Serve a peer's `member.sync`: merge its state, reply with ours.
   *
   * @param msg the peer's state
   * @param from who sent it
   * @returns our state
   */
  handleSync(msg: SyncMessage, from: string): SyncMessage {
    return { records: this.#serving().handleSync(msg?.records, from) };
  }

  /** Close every connection, flushing what is queued (the membership layer announces). */
  close(): void {
    this.#stopping = true;
    this.#joiner?.close();
    if (this.#ringTimer !== undefined) this.#clock.clearTimeout(this.#ringTimer);
    this.#ringTimer = undefined;
    this.#rejoiner.close();
    this.#calls.close();
    this.#pool.close();
  }

  /** The membership layer, once serving. */
  #serving(): MeshMembership {
    if (!this.#links) {
      throw new CircuitError("busy", "Joining failed: the server is still starting");
    }
    return this.#links.membership;
  }

  /** Follow a membership change. */
  #memberChanged(e: MembershipEvent): void {
    this.#updateRingSoon();
    if (e.type === "join") {
      this.#rejoiner.joined(e.member.id);
      return;
    }
    this.#calls.forget(e.member.id);
    this.#pool.retire(e.member.id);
    // Keep re-dialing a failed member for a while: a partition that heals merges again.
    if (e.reason === "failed" && !this.#stopping) this.#rejoiner.failed(e.member);
  }

  /** Update the watch ring when membership settles (see `ringUpdateDelayMs`). */
  #updateRingSoon(): void {
    if (this.#stopping) return;
    const now = this.#clock.now();
    if (this.#ringTimer === undefined) this.#ringDueSince = now;
    else this.#clock.clearTimeout(this.#ringTimer);
    const delay = ringUpdateDelayMs({
      nowMs: now,
      dueSinceMs: this.#ringDueSince,
      settleMs: this.#config.ringSettleMs,
      maxWaitMs: this.#config.ringMaxWaitMs,
    });
    this.#ringTimer = this.#clock.setTimeout(() => {
      this.#ringTimer = undefined;
      this.#updateRing();
    }, delay);
  }

  /**
   * Dial the members we watch (the next ones after us in id order); retire connections
   * that neither watch a member nor carry calls to it.
   */
  #updateRing(): void {
    if (this.#stopping) return;
    const members = this.#table.list().map((m) => m.id);
    this.#watching = new Set(watchRing(members, this.#table.self.id, this.#config.watched));
    for (const id of this.#watching) void this.#pool.connect(this.#table.get(id)!).catch(() => {});
    for (const [id] of this.#pool.entries()) this.#retireUnneeded(id);
  }

  /** Retire the connection to a member unless we watch it or calls use it. */
  #retireUnneeded(id: string): void {
    if (!this.#watching.has(id) && !this.#calls.has(id)) this.#pool.retire(id);
  }
}

/** An IP address as is; a name resolved to its first IPv4 address. */
async function resolveHost(host: string): Promise<string> {
  if (/^[0-9.]+$/.test(host) || host.includes(":")) return host;
  const [addr] = await Deno.resolveDns(host, "A");
  if (!addr) throw new CircuitError("not found", `Resolving ${host} failed: no IPv4 address`);
  return addr;
}

/**
 * Whether a join error will stay: a malformed seed or a key mismatch. A keyless server
 * that could not find the owner of a loopback socket (under load, `/proc` is read while
 * the socket is still being set up) refuses with `auth` too, naming its own user: that one
 * passes.
 */
function isPermanent(err: unknown): boolean {
  if (!(err instanceof CircuitError)) return false;
  if (err.code === "bad request") return true;
  return err.code === "auth" && /key/.test(err.message) && !/own user/.test(err.message);
}
