/**
 * The server layer's defaults, bounds and timings, in one place: the mesh between servers,
 * the daemon's start and stop, `stk`, the front door, local peers, the logs and the var
 * directory, the namespace and listings, and the element settings that `circuit start`
 * flags override. Every field has its unit in its name. (The transport's live in
 * `net/config.ts`, the membership protocol's in `net/membership/config.ts`.)
 *
 * ```ts
 * import { meshConfig } from "./config.ts";
 * const config = meshConfig({ ringSettleMs: 20 });
 * console.assert(config.watched === 3);
 * ```
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";
import type { TransportConfig } from "../net/config.ts";

// The type of {@linkcode PEER_KEEPALIVE}, made public here so its documentation is whole.
export type { TransportConfig } from "../net/config.ts";
// The element layer's default, which `--output-bound` overrides (see `elementSettings`).
export { DEFAULT_OUTPUT_BOUND_BYTES } from "../elements/output.ts";

// --- The mesh (server/mesh/) ---

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

/** How long a failed member is re-dialed (partition healing), in ms. */
export const REJOIN_MS = 10 * 60 * 1000;

/** Timings and bounds of the mesh: the connections a server dials to other members. */
export interface MeshConfig {
  /** Members watched through a connection (the next ones in id order). @default {3} */
  watched: number;
  /**
   * The watch ring is updated once membership has not changed for this long, in ms, so a
   * burst of joins dials once, not once per join.
   * @default {100}
   */
  ringSettleMs: number;
  /**
   * Longest wait for membership to settle before the watch ring is updated anyway, in ms:
   * the update comes `min(ringSettleMs after the last change, ringMaxWaitMs after the
   * first)`.
   * @default {1000}
   */
  ringMaxWaitMs: number;
  /**
   * How long an unused connection dialed for calls stays open, in ms; idle connections
   * are looked for every `callIdleMs / 2`, so one closes between 1 and 1.5 × this.
   * @default {60000}
   */
  callIdleMs: number;
  /** How long a departed member's connection stays open for late replies, in ms. @default {1000} */
  retireGraceMs: number;
  /**
   * Time limit of the one redial after a connection is lost, of a failed member's rejoin
   * and of a bare port check, in ms.
   * @default {1000}
   */
  redialTimeoutMs: number;
  /** How often failed members are re-dialed (partition healing), in ms. @default {2000} */
  rejoinIntervalMs: number;
  /** How long a failed member keeps being re-dialed, in ms. @default {600000} */
  rejoinForMs: number;
  /** Most failed members re-dialed; past it the oldest failure is forgotten. @default {1024} */
  maxRejoining: number;
  /** Longest random wait before joining an announced server, in ms. @default {100} */
  discoverJitterMs: number;
}

/** The mesh's defaults. */
export const DEFAULT_MESH_CONFIG: Readonly<MeshConfig> = Object.freeze({
  watched: WATCHED,
  ringSettleMs: 100,
  ringMaxWaitMs: 1000,
  callIdleMs: CALL_IDLE_MS,
  retireGraceMs: 1000,
  redialTimeoutMs: 1000,
  rejoinIntervalMs: 2000,
  rejoinForMs: REJOIN_MS,
  maxRejoining: MAX_REJOINING,
  discoverJitterMs: DISCOVER_JITTER_MS,
});

/**
 * Merge overrides into the mesh's defaults and check every field. Fields of `overrides`
 * that are not mesh fields, or are undefined, are ignored, so a larger options object
 * may be passed as it is.
 *
 * @param overrides fields to change
 * @returns a complete, checked config
 * @throws {CircuitError} `bad request` naming the first field that is negative or not a number
 */
export function meshConfig(overrides: Partial<MeshConfig> = {}): MeshConfig {
  const c: MeshConfig = { ...DEFAULT_MESH_CONFIG };
  for (const k of Object.keys(DEFAULT_MESH_CONFIG) as (keyof MeshConfig)[]) {
    const v = overrides[k];
    if (v === undefined) continue;
    if (!Number.isFinite(v) || v < 0) {
      throw new CircuitError(
        "bad request",
        `Mesh config field "${k}" must be a number of at least 0, got ${v}`,
      );
    }
    c[k] = v;
  }
  return c;
}

// --- The daemon (server/server.ts, server/lifecycle.ts) ---

/** Default largest channel message, in bytes: 1 GiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 ** 3;

/** Default time between TERM and KILL when a process is scrubbed, in ms. */
export const DEFAULT_SCRUB_GRACE_MS = 5000;

/** Default time a full output stream waits for its first reader (`--output-hold`), in ms. */
export const DEFAULT_OUTPUT_HOLD_MS = 5000;

/** The Docker engine used by `--docker` when `DOCKER_HOST` is unset. */
export const DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock";

/** How long `circuit start -j URL` waits for the join before giving up, in ms. */
export const START_JOIN_TIMEOUT_MS = 10_000;

/** Attempts at finding a port free for both TCP and UDP when any port will do. */
export const PORT_ATTEMPTS = 8;

/** At most this many elements are listed in `stk` (`ElementCount` has them all). */
export const STK_MAX_ELEMENTS = 1000;

// --- The front door (server/accept_gate.ts) ---

/** Connections still in their handshake, in all; more are closed at once. */
export const MAX_PREAUTH_CONNECTIONS = 256;
/**
 * Connections still in their handshake from one source address (IPv4 address, or IPv6
 * /64 network); more are closed at once.
 */
export const MAX_PREAUTH_PER_ADDRESS = 32;
/** First pause after an accept error, in ms; doubled after each further error. */
export const ACCEPT_BACKOFF_MIN_MS = 10;
/** Longest pause between accept attempts while accepting fails, in ms. */
export const ACCEPT_BACKOFF_MAX_MS = 1000;

// --- Local peers on a keyless server (server/local_peer.ts) ---

/** How long a UDP socket table read answers lookups, in ms: 2 s. */
export const UDP_TABLE_TTL_MS = 2000;
/**
 * A lookup that misses re-reads the UDP table only if the last read is at least this old,
 * in ms, so a flood of packets from unknown ports costs at most ten reads a second.
 */
export const UDP_TABLE_MIN_REFRESH_MS = 100;
/**
 * Tries a TCP owner lookup makes before it refuses: kernel queries (netlink sock_diag), or
 * reads of `/proc/net/tcp` and `tcp6` when those are not available. A peer socket can be
 * briefly missing or half-open (a dialed listener's side is a request socket until the
 * last ACK is processed; a `/proc` read can skip a socket that moves while it is read).
 */
export const TCP_LOOKUP_ATTEMPTS = 3;
/** A TCP owner lookup stops trying this long after it started, in ms (it tries at least once). */
export const TCP_LOOKUP_DEADLINE_MS = 300;
/** Pause between two kernel queries of one TCP owner lookup, in ms. */
export const TCP_LOOKUP_RETRY_MS = 20;
/**
 * A read of the TCP tables starts at least this long after the previous one started, in
 * ms: one read answers every lookup that waits for it, so a burst of connections costs at
 * most 50 reads a second, whatever its size.
 */
export const TCP_TABLE_MIN_REFRESH_MS = 20;

// --- Logs and the var directory (server/log.ts, server/oplog.ts, server/var_dir.ts) ---

/** Mode of `server.log`: readable and writable by the server's user only. */
export const LOG_FILE_MODE = 0o600;
/** Lines of one kind written per window before the rest are only counted. */
export const THROTTLED_LINES_PER_WINDOW = 10;
/** The window of a `LogThrottle` (`server/log.ts`), in ms: 10 s. */
export const THROTTLE_WINDOW_MS = 10_000;

/** Lines held in memory while `ops.log` cannot be written: 4096. */
export const OPLOG_BACKLOG_LINES = 4096;
/** How often held lines are retried while nothing new is logged, in ms: 1 s. */
export const OPLOG_RETRY_MS = 1000;

/**
 * Size at which `ops.log` is rotated: it is renamed `ops.log.1` (replacing the one before)
 * and a new `ops.log` begun, so the two together stay under about twice this: 64 MiB.
 */
export const OPLOG_MAX_BYTES: number = 64 * 1024 * 1024;

/**
 * Environment variable that sets the rotation size of `ops.log` (tests only: a tiny bound
 * exercises rotation without writing 64 MiB). Read once, here.
 */
export const TEST_OPLOG_MAX_BYTES_ENV = "CIRCUIT_TEST_OPLOG_MAX_BYTES";

/**
 * The rotation size of `ops.log`: `CIRCUIT_TEST_OPLOG_MAX_BYTES` when set, positive and
 * readable without a prompt, else {@linkcode OPLOG_MAX_BYTES}.
 *
 * @returns bytes
 */
export function oplogMaxBytes(): number {
  try {
    const q = Deno.permissions.querySync({ name: "env", variable: TEST_OPLOG_MAX_BYTES_ENV });
    if (q.state !== "granted") return OPLOG_MAX_BYTES;
    const v = Number(Deno.env.get(TEST_OPLOG_MAX_BYTES_ENV));
    return Number.isSafeInteger(v) && v > 0 ? v : OPLOG_MAX_BYTES;
  } catch {
    return OPLOG_MAX_BYTES;
  }
}

/** Content type of `/metrics` (`start --metrics`): the Prometheus text format 0.0.4. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Lowest log level written unless `start --log-level` says otherwise. */
export const DEFAULT_LOG_LEVEL = "info";
/** Log line format unless `start --log-format` says otherwise. */
export const DEFAULT_LOG_FORMAT = "text";
/** Name of the server log in the var directory (written unless `--log-file none`). */
export const SERVER_LOG_NAME = "server.log";
/**
 * Set by systemd when stderr goes to the journal: then the server log is not also written
 * to `server.log` unless `--log-file` asks for it (journald would otherwise store it twice).
 */
export const JOURNAL_STREAM_ENV = "JOURNAL_STREAM";

/** Wait for the var directory's lock before deciding another server holds it, in ms. */
export const LOCK_WAIT_MS = 300;
/** Mode of a var directory: the server's user only. */
export const VAR_DIR_MODE = 0o700;
/** Mode of the files the server writes there (`lock`, `pid`, `ops.log`; `server.log` too). */
export const VAR_FILE_MODE = 0o600;
/**
 * Mode of the default var directories' shared parent, `$TMPDIR/circuit`, when a server
 * creates it: like `/tmp`, anyone may add a directory and only its owner may remove it.
 */
export const SHARED_PARENT_MODE = 0o1777;

// --- The namespace and listings (server/namespace.ts, server/listing.ts) ---

/**
 * Most anchors one server holds (the server's own anchor not counted), elements and the
 * empty anchors above them together. A make that would pass it fails; scrubbing frees
 * anchors. At most about 60 MB of names and far below what a listing can stream.
 */
export const MAX_ANCHORS = 100_000;

/**
 * How long a recursive cluster listing waits for each other server, in ms: for its
 * first batch, each next one, and its reply (time spent waiting for the caller to read
 * does not count).
 */
export const LS_FANOUT_TIMEOUT_MS = 5000;

/**
 * Most bytes of entries (estimated as `lsEntryBytes` in `net/ls_stream.ts` does) in a
 * listing sent as one reply, to a caller that opened no download: well below the 4 MiB
 * frame, so such a caller gets a clear error instead of "Reply is too large to send", and
 * the server never holds more than this of it.
 */
export const LS_WHOLE_REPLY_BYTES: number = 3 * 1024 * 1024;
