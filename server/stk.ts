/**
 * `stk`, the server's diagnostic dump: one section per component, each from that
 * component's own `describe()` (or `stats()`), in a fixed key order that tests and
 * users read.
 *
 * @module
 */

import type { MembershipStats } from "../net/membership/mod.ts";
import type { Element } from "../elements/element.ts";
import { spoolMemoryBytes } from "../elements/spool.ts";
import type { ListenerStats } from "./accept_gate.ts";
import type { AcceptedConnections } from "./connections.ts";
import { STK_MAX_ELEMENTS } from "./config.ts";
import type { MemberTable } from "./membership.ts";
import type { Mesh } from "./mesh/mod.ts";
import type { OpLogStats } from "./oplog.ts";

/** Multicast discovery, as `stk` shows it. */
export interface DiscoveryView {
  /** The group, `GROUP:PORT`. */
  Group: string | undefined;
  /** Announcements sent. */
  Sent: number;
  /** Packets dropped, by reason. */
  Dropped: Record<string, number>;
  /** Nonces forgotten early because the replay cache was full (replays of them would pass). */
  Evicted: number;
}

/** Where each section of `stk` comes from. */
export interface StkSources {
  /** The server's id (16 hex digits). */
  id: string;
  /** Its URL. */
  url: string;
  /** RFC 3339 start time. */
  joined: string;
  /** Its var directory. */
  varDir: string;
  /** Members. */
  table: Pick<MemberTable, "describe">;
  /** Dialed connections and join queues. */
  mesh: Pick<Mesh, "describe" | "queues">;
  /** The listener. */
  listener: { stats(): ListenerStats };
  /** The operation log. */
  oplog: { stats(): OpLogStats };
  /** Accepted connections. */
  connections: Pick<AcceptedConnections, "describe">;
  /** This server's elements, as `Namespace.elements()` lists them. */
  elements(): Array<[string[], Element]>;
  /** Operations under way. */
  inflight(): Array<Record<string, unknown>>;
  /** The membership protocol. */
  membership: { stats(): MembershipStats };
  /** Multicast discovery, or null when off. */
  discovery(): DiscoveryView | null;
}

/**
 * The `stk` dump: Id, Addr, Pid, Joined, UptimeMs, Memory, Members, Peers, Listener,
 * OpLog, Spool, Connections, Elements (the first {@linkcode STK_MAX_ELEMENTS}, so a server
 * full of elements still fits one reply), ElementCount, InFlight, VarDir, Queues,
 * Membership, Discovery.
 *
 * @param s the components
 * @returns the dump, a JSON value
 */
export function describeServer(s: StkSources): Record<string, unknown> {
  const elements = s.elements();
  const membership = s.membership.stats();
  return {
    Id: `X${s.id}`,
    Addr: s.url,
    Pid: Deno.pid,
    Joined: s.joined,
    UptimeMs: Math.round(performance.now()),
    Memory: Deno.memoryUsage(),
    Members: s.table.describe(),
    Peers: s.mesh.describe(),
    Listener: s.listener.stats(),
    OpLog: s.oplog.stats(),
    Spool: { MemoryBytes: spoolMemoryBytes() },
    Connections: s.connections.describe(),
    Elements: elements.slice(0, STK_MAX_ELEMENTS).map(([rel, el]) => ({
      Path: `/X${s.id}/${rel.join("/")}`,
      Kind: el.kind,
    })),
    ElementCount: elements.length,
    InFlight: s.inflight(),
    VarDir: s.varDir,
    Queues: { ...s.mesh.queues(), Broadcasts: membership.queue.depth },
    Membership: membership,
    Discovery: s.discovery(),
  };
}
