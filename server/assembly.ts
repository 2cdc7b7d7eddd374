/**
 * The assembly step: a server's components made in dependency order, each linked only to
 * those made before it (the mesh is linked to the router, which uses it, through
 * `Mesh.serve`), with each one's stop step registered on the lifecycle. Nothing here
 * binds, reads or waits: the ports are bound before, and {@linkcode ServerAssembly.start}
 * sets it going.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { accept } from "../net/conn.ts";
import { CircuitError } from "../net/errors.ts";
import type { TransportConfig } from "../net/config.ts";
import type { Announcer, Group } from "../net/discovery.ts";
import {
  Memberlist,
  type MembershipConfig,
  type MembershipProfile,
  type UdpTransport,
} from "../net/membership/mod.ts";
import type { ElementSettings } from "../elements/element.ts";
import { ELEMENT_KINDS } from "../elements/registry.ts";
import { ServerElement } from "../elements/server/mod.ts";
import { AcceptGate } from "./accept_gate.ts";
import { PEER_KEEPALIVE, START_JOIN_TIMEOUT_MS } from "./config.ts";
import { AcceptedConnections } from "./connections.ts";
import type { Lifecycle } from "./lifecycle.ts";
import { admitLocalPeer } from "./local_peer.ts";
import { droppedLogLines, logger } from "./log.ts";
import { MemberEventLog, MemberTable } from "./membership.ts";
import { JOIN_FIRST_WAIT_MS, Mesh } from "./mesh/mod.ts";
import { Namespace } from "./namespace.ts";
import { NetWarnings } from "./net_warnings.ts";
import { OpLog } from "./oplog.ts";
import { Router } from "./router.ts";
import type { MetricsSources } from "./metrics.ts";
import { describeServer } from "./stk.ts";

/** Multicast discovery, when on: the loaded module and the group. */
export interface DiscoverySetup {
  /** `net/discovery.ts`, loaded only by servers that use it. */
  module: typeof import("../net/discovery.ts");
  /** The group. */
  group: Group;
  /** The group as given (`--discover`), for `stk`. */
  text: string;
}

/** What the assembly is made from: the server's identity and what was bound and locked. */
export interface AssemblyOptions {
  /** The server's id (16 hex digits). */
  id: string;
  /** Its URL. */
  url: string;
  /** RFC 3339 start time. */
  joined: string;
  /** The host the URL advertises. */
  advertise: string;
  /** The bound TCP listener; the assembly owns it from now on. */
  listener: Deno.Listener;
  /** The bound membership socket, on the listener's port. */
  udp: UdpTransport;
  /** The port both are bound on. */
  port: number;
  /** The cluster key. */
  key?: Uint8Array;
  /** The locked var directory's path. */
  varDir: string;
  /** Settings handed to every element. */
  settings: ElementSettings;
  /** Membership timing profile and overrides. */
  membership?: { profile?: MembershipProfile; config?: Partial<MembershipConfig> };
  /** Transport timings. */
  transport?: Partial<TransportConfig>;
  /** Multicast discovery, or undefined when off. */
  discovery?: DiscoverySetup;
}

/** A server's components, linked. */
export class ServerAssembly {
  /** Members, as the rest of the server sees them. */
  readonly table: MemberTable;
  /** Connections to other members. */
  readonly mesh: Mesh;
  /** The membership protocol (SWIM) that feeds the table. */
  readonly memberlist: Memberlist;
  /** The operation log. */
  readonly oplog: OpLog;
  /** This server's anchors, with the server element at the root. */
  readonly namespace: Namespace;
  /** Serves every call. */
  readonly router: Router;
  /** Connections others dialed. */
  readonly connections: AcceptedConnections = new AcceptedConnections();
  /** The front door. */
  readonly gate: AcceptGate;
  /** Multicast announcements, when discovery is on (started by `start`). */
  readonly announcer: Announcer | null;
  #o: AssemblyOptions;
  #lifecycle: Lifecycle;
  #log: Logger = logger("server");
  /** True from the membership protocol's start until the server begins to stop. */
  #live = false;

  /**
   * Make and link every component; register each one's stop step.
   *
   * @param options identity, bound ports, settings
   * @param lifecycle where stop steps go
   */
  constructor(options: AssemblyOptions, lifecycle: Lifecycle) {
    this.#o = options;
    this.#lifecycle = lifecycle;
    const { id, url, joined, key } = options;
    this.table = new MemberTable({ id, url, joined });
    this.mesh = new Mesh({
      table: this.table,
      key,
      log: logger("mesh"),
      config: options.transport,
    });
    this.memberlist = this.#makeMemberlist();
    this.oplog = new OpLog(`${options.varDir}/ops.log`);
    const serverElement = new ServerElement({
      url,
      joined,
      stk: () => this.describe(),
      join: (u, signal) => this.mesh.join(u, signal),
      suicide: () => void lifecycle.stop(),
    });
    this.namespace = new Namespace(`X${id}`, serverElement);
    this.router = new Router({
      id,
      namespace: this.namespace,
      mesh: this.mesh,
      table: this.table,
      kinds: ELEMENT_KINDS,
      settings: options.settings,
      oplog: this.oplog,
      log: this.#log,
    });
    this.mesh.serve({
      membership: this.memberlist,
      handler: this.router.handlerFor({ role: "peer", addr: "mesh" }),
    });
    this.gate = this.#makeGate();
    this.announcer = options.discovery
      ? new options.discovery.module.Announcer({
        group: options.discovery.group,
        interfaceAddress: options.advertise,
        url,
        key,
        onAnnounce: (u) => this.mesh.discovered(u),
      })
      : null;
    this.#onStop();
  }

  /**
   * The `stk` dump, one section per component.
   *
   * @returns the dump
   */
  describe(): Record<string, unknown> {
    const a = this.announcer;
    return describeServer({
      id: this.#o.id,
      url: this.#o.url,
      joined: this.#o.joined,
      varDir: this.#o.varDir,
      table: this.table,
      mesh: this.mesh,
      listener: this.gate,
      oplog: this.oplog,
      connections: this.connections,
      elements: () => this.namespace.elements(),
      inflight: () => this.router.inflight(),
      membership: this.memberlist,
      discovery: () =>
        a
          ? { Group: this.#o.discovery?.text, Sent: a.sent, Dropped: a.dropped, Evicted: a.evicted }
          : null,
    });
  }

  /**
   * What `/metrics` and `/health` read (`metrics.ts`).
   *
   * @returns the sources
   */
  metricsSources(): MetricsSources {
    return {
      describe: () => this.describe(),
      elements: () => this.namespace.elements(),
      droppedLogLines,
      live: () => this.#live,
    };
  }

  /**
   * Set it going: start the membership protocol and discovery, handle signals if asked,
   * then join through the seeds if given: retried with backoff until one answers (see
   * `Joiner` in `mesh/joiner.ts`), waiting at most `JOIN_FIRST_WAIT_MS` for the first
   * round. On failure everything is stopped, quietly.
   *
   * @param options `join`: members' URLs or `HOST:PORT`s (`circuit start -j`);
   *   `handleSignals`: stop on SIGTERM and SIGINT
   * @throws {CircuitError} when discovery cannot start, or every seed refuses for good (a
   *   key mismatch, a malformed seed)
   */
  async start(
    options: { join?: string | readonly string[]; handleSignals?: boolean } = {},
  ): Promise<void> {
    const lifecycle = this.#lifecycle;
    try {
      await this.memberlist.start();
      this.#live = true;
      await this.announcer?.start();
    } catch (err) {
      await lifecycle.stop(true);
      throw err;
    }
    if (options.handleSignals) lifecycle.handleSignals();
    const seeds = typeof options.join === "string" ? [options.join] : options.join ?? [];
    if (seeds.length === 0) return;
    const joiner = this.mesh.joinSeeds(seeds, { attemptTimeoutMs: START_JOIN_TIMEOUT_MS });
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      joiner.firstRound,
      new Promise((resolve) => timer = setTimeout(resolve, JOIN_FIRST_WAIT_MS)),
    ]);
    clearTimeout(timer);
    const err = joiner.error;
    if (err === undefined) return;
    await lifecycle.stop(true);
    throw new CircuitError(
      (err as CircuitError).code ?? "unreachable",
      `Joining ${seeds.join(", ")} failed: ${(err as Error).message}`,
      { cause: err },
    );
  }

  /** The membership protocol, with the table following it and the mesh giving evidence. */
  #makeMemberlist(): Memberlist {
    const { id, url, joined, key, advertise, udp, port } = this.#o;
    const mesh = this.mesh;
    const ml = new Memberlist({
      self: { id, url, addr: { host: advertise, port }, start: Date.parse(joined) },
      key,
      profile: this.#o.membership?.profile,
      config: this.#o.membership?.config,
      transport: udp,
      // A member that missed a probe with no connection open: the mesh dials it (a refused
      // port proves it gone).
      onUnanswered: (id) => void mesh.check(id),
      // A member accused here, by our probe or by someone's word: check that its port still
      // answers, so a crash is proven here at once, not after the suspicion timeout.
      onAccused: (id) => void mesh.checkPort(id),
    });
    const table = this.table;
    const memberLog = logger("membership");
    // Bounded: a flapping storm once wrote tens of thousands of these lines per server.
    const events = new MemberEventLog((line) => memberLog.info(line));
    this.#lifecycle.onStop("log throttles", () => events.close());
    table.subscribe((e) => events.log(e));
    ml.subscribe((e) => {
      const m = e.member;
      if (e.type === "join") {
        table.admit({ id: m.id, url: m.url, joined: new Date(m.start).toISOString() });
      } else table.remove(m.id, e.reason);
    });
    return ml;
  }

  /** The front door: the handshake of every accepted socket, then the router. */
  #makeGate(): AcceptGate {
    const { id, url, key } = this.#o;
    const netLog = logger("net");
    const warnings = new NetWarnings(netLog);
    this.#lifecycle.onStop("log throttles", () => warnings.close());
    return new AcceptGate({
      listener: this.#o.listener,
      warn: (m) => netLog.warn(m),
      handshake: (sock) =>
        accept(sock, {
          key,
          self: { pid: Deno.pid, id, url },
          handlerFor: (remote) => this.router.handlerFor(remote),
          config: this.#o.transport,
          peerConfig: PEER_KEEPALIVE,
          log: (m) => warnings.warn(m),
          quietLog: (m) => netLog.debug(m),
          // Keyless: only our own user (or root) may use a loopback connection.
          admit: key ? undefined : ({ remote, local }) => admitLocalPeer({ remote, local }),
        }).then((conn) => {
          if (conn) this.connections.add(conn);
        }),
    });
  }

  /** Register each component's stop step (see `STOP_PHASES`). */
  #onStop(): void {
    const l = this.#lifecycle;
    const announcer = this.announcer;
    if (announcer) l.onStop("discovery", () => announcer.stop());
    l.onStop("membership", async (quiet) => {
      this.#live = false;
      if (!quiet) await this.memberlist.leave().catch(() => {});
      await this.memberlist.stop().catch(() => {});
    });
    l.onStop("mesh", () => this.mesh.close());
    l.onStop("elements", async () => {
      await Promise.allSettled(this.namespace.elements().map(([, el]) => el.scrub()));
    });
    l.onStop("listener", () => this.gate.close());
    l.onStop("connections", () => this.connections.goAway("server stopping"));
    l.onStop("oplog", () => this.oplog.close());
  }
}
