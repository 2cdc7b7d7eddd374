/**
 * The daemon's lifecycle: lock the var directory, read the key, bind, serve, join, and
 * stop cleanly on SIGTERM, SIGINT or `suicide`.
 *
 * @module
 */

import { accept, type Connection } from "../net/conn.ts";
import { CircuitError } from "../net/errors.ts";
import { readKeyFile } from "../net/keys.ts";
import { formatUrl, newServerId } from "../net/url.ts";
import type { TransportConfig } from "../net/config.ts";
import { ServerElement } from "../elements/server/mod.ts";
import { ELEMENT_KINDS } from "../elements/registry.ts";
import { DEFAULT_OUTPUT_BOUND_BYTES } from "../elements/output.ts";
import { spoolMemoryBytes } from "../elements/spool.ts";

/** Default largest channel message, in bytes: 1 GiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 ** 3;

/** At most this many elements are listed in `stk` (`ElementCount` has them all). */
export const STK_MAX_ELEMENTS = 1000;

/** Default time between TERM and KILL when a process is scrubbed, in ms. */
export const DEFAULT_SCRUB_GRACE_MS = 5000;
/** Default time a full output stream waits for its first reader (`--output-hold`). */
export const DEFAULT_OUTPUT_HOLD_MS = 5000;
import { planBind, readDefaultIface, readInterfaces } from "./addr.ts";
import { isLoopback } from "../net/url.ts";
import type { Announcer } from "../net/discovery.ts";
import { logger, LogThrottle, setupLogging } from "./log.ts";
import { AcceptGate } from "./accept_gate.ts";
import { admitLocalPeer, UdpOwners } from "./local_peer.ts";
import { MemberTable } from "./membership.ts";
import { Mesh, PEER_KEEPALIVE } from "./mesh.ts";
import {
  type AdmitFn,
  Memberlist,
  type MembershipConfig,
  type MembershipProfile,
  UdpTransport,
} from "../net/membership/mod.ts";
import { Namespace } from "./namespace.ts";
import { OpLog } from "./oplog.ts";
import { Router } from "./router.ts";
import { defaultVarDir, lockVarDir } from "./var_dir.ts";

/** Options of {@linkcode startServer}, one per `circuit start` flag. */
export interface ServerOptions {
  /** `-a HOST:PORT`; port 0 picks one. */
  addr?: string;
  /** `--if IFACE`: bind that interface's IPv4 address. */
  iface?: string;
  /** `-j URL`: join this member's cluster at start. */
  join?: string;
  /** `--discover GROUP:PORT` (multicast discovery; not yet implemented). */
  discover?: string;
  /** `--hmac FILE`: the cluster key file. */
  hmacFile?: string;
  /** `--docker`: enable Docker elements. */
  docker?: boolean;
  /** `--var DIR`; default under the temp dir. */
  varDir?: string;
  /** `--insecure`: allow a non-loopback bind without a key. */
  insecure?: boolean;
  /** Bytes of stdout and of stderr retained per process. @default {4 MiB} */
  outputBoundBytes?: number;
  /**
   * How long a process's full stdout or stderr waits for its first reader before it
   * drops its oldest bytes, in ms; 0 never waits. @default {5000}
   */
  outputHoldMs?: number;
  /** Time between TERM and KILL when scrubbing a process, in ms. @default {5000} */
  scrubGraceMs?: number;
  /** Largest channel message accepted, in bytes. @default {1 GiB} */
  maxMessageBytes?: number;
  /**
   * Failure detection and gossip: a timing profile (`lan`, `wan`, `test`) and overrides.
   * @default {{ profile: "lan" }}
   */
  membership?: { profile?: MembershipProfile; config?: Partial<MembershipConfig> };
  /** Transport timings (tests pass faster ones). */
  transport?: Partial<TransportConfig>;
  /** Stop cleanly on SIGTERM and SIGINT (the CLI sets this). @default {false} */
  handleSignals?: boolean;
}

/** A running server. */
export interface RunningServer {
  /** Its URL. */
  url: string;
  /** Its id (16 hex digits). */
  id: string;
  /** Resolves when the server has stopped. */
  stopped: Promise<void>;
  /** Stop cleanly: announce leave, scrub elements, close, unlock. */
  stop(): Promise<void>;
}

/**
 * Start a server.
 *
 * @param options the flags
 * @returns the running server
 * @throws {CircuitError} for a bad flag, a held var directory, a bad key, a port in use
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const id = newServerId();
  const key = options.hmacFile ? await readKeyFile(options.hmacFile) : undefined;
  const plan = planBind({
    addr: options.addr,
    iface: options.iface,
    keyed: !!key,
    insecure: !!options.insecure,
    interfaces: readInterfaces(),
    defaultIface: readDefaultIface(),
  });
  // Discovery's UDP code loads only for servers that use it.
  const discovery = options.discover ? await import("../net/discovery.ts") : null;
  const group = discovery ? discovery.parseGroup(options.discover!) : null;
  if (group && isLoopback(plan.advertise)) {
    throw new CircuitError(
      "bad request",
      `Discovery on ${options.discover} needs a non-loopback address (loopback carries no multicast): use --if IFACE or -a HOST:PORT, with --hmac`,
    );
  }
  const varDir = await lockVarDir(options.varDir ?? defaultVarDir(id), {
    sharedParent: options.varDir === undefined,
  });
  let dockerHost: string | null = null;
  if (options.docker) {
    dockerHost = Deno.env.get("DOCKER_HOST") || "unix:///var/run/docker.sock";
    try {
      const docker = await import("../elements/docker/mod.ts");
      const engine = docker.engineFor(dockerHost);
      await docker.checkDocker(engine);
      await docker.removeLeftovers(engine, varDir.path);
    } catch (err) {
      varDir.release();
      throw new CircuitError(
        "unreachable",
        `Enabling Docker elements failed: ${(err as Error).message}`,
      );
    }
  }
  const closeLog = setupLogging(`${varDir.path}/server.log`);
  const log = logger("server");
  let listener: Deno.Listener;
  let udp: UdpTransport;
  try {
    // Keyless: loopback does not separate users, so membership packets from loopback are
    // read only when they come from a socket of our own user (or root).
    const owners = key ? null : new UdpOwners();
    [listener, udp] = await bindPorts(
      plan.hostname,
      plan.port,
      owners ? (from) => owners.admit(from) : undefined,
    );
  } catch (err) {
    closeLog();
    varDir.release();
    throw err;
  }
  const port = (listener.addr as Deno.NetAddr).port;
  const url = formatUrl({ host: plan.advertise, port, pid: Deno.pid, id });
  const joined = new Date().toISOString();
  const table = new MemberTable({ id, url, joined });
  // The membership layer (SWIM) decides who is a member; the table follows it.
  const ml = new Memberlist({
    self: { id, url, addr: { host: plan.advertise, port }, start: Date.parse(joined) },
    key,
    profile: options.membership?.profile,
    config: options.membership?.config,
    transport: udp,
    // A member that missed a probe with no connection open: the mesh dials it (a refused
    // port proves it gone).
    onUnanswered: (id) => mesh.check(id),
    // A member accused here, by our probe or by someone's word: check that its port still
    // answers, so a crash is proven here at once, not after the suspicion timeout.
    onAccused: (id) => mesh.checkPort(id),
  });
  const memberLog = logger("membership");
  ml.subscribe((e) => {
    const m = e.member;
    if (e.type === "join") {
      const info = { id: m.id, url: m.url, joined: new Date(m.start).toISOString() };
      if (table.admit(info)) memberLog.info(`member X${m.id} joined`);
    } else if (table.remove(m.id, e.reason)) {
      memberLog.info(`member X${m.id} ${e.reason === "left" ? "left" : "failed"}`);
    }
  });
  const oplog = new OpLog(`${varDir.path}/ops.log`);
  const conns = new Set<Connection>();
  let stopping: Promise<void> | null = null;
  let announcer: Announcer | null = null;
  let onStopped!: () => void;
  const stopped = new Promise<void>((r) => (onStopped = r));

  // deno-lint-ignore prefer-const
  let router: Router;
  const mesh = new Mesh({
    table,
    membership: ml,
    key,
    handler: (call) => router.handlerFor({ role: "peer", addr: "mesh" })(call),
    log: logger("mesh"),
    config: options.transport,
  });
  await ml.start();
  const serverElement: ServerElement = new ServerElement({
    url,
    joined,
    stk: (): Record<string, unknown> => ({
      Id: `X${id}`,
      Addr: url,
      Pid: Deno.pid,
      Joined: joined,
      UptimeMs: Math.round(performance.now()),
      Memory: Deno.memoryUsage(),
      Members: table.list().map((m) => `X${m.id}`),
      Peers: mesh.describe(),
      Listener: gate.stats(),
      OpLog: oplog.stats(),
      Spool: { MemoryBytes: spoolMemoryBytes() },
      Connections: [...conns].map((c) => ({ Role: c.remote.role, Addr: c.remote.addr })),
      // The first STK_MAX_ELEMENTS, so a server full of elements still fits one reply.
      Elements: namespace.elements().slice(0, STK_MAX_ELEMENTS).map(([rel, el]) => ({
        Path: `/X${id}/${rel.join("/")}`,
        Kind: el.kind,
      })),
      ElementCount: namespace.elements().length,
      InFlight: router.inflight(),
      VarDir: varDir.path,
      Queues: { ...mesh.queues(), Broadcasts: ml.stats().queue.depth },
      Membership: ml.stats(),
      Discovery: announcer
        ? { Group: options.discover, Sent: announcer.sent, Dropped: announcer.dropped }
        : null,
    }),
    join: (u, signal) => mesh.join(u, signal),
    suicide: () => void stop(),
  });
  const namespace = new Namespace(`X${id}`, serverElement);
  const settings = {
    outputBoundBytes: options.outputBoundBytes ?? DEFAULT_OUTPUT_BOUND_BYTES,
    outputHoldMs: options.outputHoldMs ?? DEFAULT_OUTPUT_HOLD_MS,
    scrubGraceMs: options.scrubGraceMs ?? DEFAULT_SCRUB_GRACE_MS,
    spoolDir: `${varDir.path}/spool`,
    varDir: varDir.path,
    dockerHost,
    maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    advertiseHost: plan.advertise,
  };
  router = new Router({ id, namespace, mesh, table, kinds: ELEMENT_KINDS, settings, oplog, log });

  const netLog = logger("net");
  // Anyone who reaches the port can make these lines: each kind is rate-limited.
  const throttles = new Map<string, LogThrottle>();
  const netWarn = (m: string) => {
    const what = m.startsWith("refusing connection")
      ? "refused connections"
      : m.startsWith("handshake with")
      ? "failed handshakes"
      : "connection errors";
    let t = throttles.get(what);
    if (!t) throttles.set(what, t = new LogThrottle({ sink: (l) => netLog.warn(l), what }));
    t.log(m);
  };
  const gate = new AcceptGate({
    listener,
    warn: (m) => netLog.warn(m),
    handshake: (sock) =>
      accept(sock, {
        key,
        self: { pid: Deno.pid, id, url },
        handlerFor: (remote) => router.handlerFor(remote),
        config: options.transport,
        peerConfig: PEER_KEEPALIVE,
        log: netWarn,
        quietLog: (m) => netLog.debug(m),
        // Keyless: only our own user (or root) may use a loopback connection.
        admit: key ? undefined : ({ remote, local }) => admitLocalPeer({ remote, local }),
      }).then((conn) => {
        if (!conn) return;
        conns.add(conn);
        void conn.closed.then(() => conns.delete(conn));
      }),
  });

  const stop = (quiet = false): Promise<void> => {
    stopping ??= (async () => {
      if (!quiet) log.info("stopping");
      announcer?.stop();
      if (!quiet) await ml.leave().catch(() => {});
      await ml.stop().catch(() => {});
      mesh.close();
      // End every element at once (processes get TERM, then KILL after the grace).
      await Promise.allSettled(namespace.elements().map(([, el]) => el.scrub()));
      gate.close();
      await Promise.all([...conns].map((c) => c.mux.goAway("server stopping")));
      for (const t of throttles.values()) t.close();
      oplog.close();
      closeLog();
      varDir.release();
      onStopped();
    })();
    return stopping;
  };

  if (group && discovery) {
    announcer = new discovery.Announcer({
      group,
      interfaceAddress: plan.advertise,
      url,
      key,
      onAnnounce: (u) => mesh.discovered(u),
    });
    try {
      await announcer.start();
    } catch (err) {
      announcer = null;
      await stop(true);
      throw err;
    }
  }
  if (options.handleSignals) {
    for (const sig of ["SIGTERM", "SIGINT"] as const) {
      Deno.addSignalListener(sig, () => void stop());
    }
  }
  if (options.join) {
    try {
      await mesh.join(options.join, AbortSignal.timeout(10_000));
    } catch (err) {
      await stop(true);
      throw new CircuitError(
        (err as CircuitError).code ?? "unreachable",
        `Joining ${options.join} failed: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
  log.info(`serving ${url} (var ${varDir.path})`);
  return { url, id, stopped, stop };
}

/** Attempts at finding a port free for both TCP and UDP when any port will do. */
const PORT_ATTEMPTS = 8;

/**
 * Bind the TCP listener and the membership's UDP socket on the same port number. With
 * port 0 the kernel picks the TCP port; if that UDP port is taken, try another.
 */
async function bindPorts(
  hostname: string,
  port: number,
  admit: AdmitFn | undefined,
): Promise<[Deno.Listener, UdpTransport]> {
  for (let attempt = 1;; attempt++) {
    let listener: Deno.Listener;
    try {
      listener = Deno.listen({ hostname, port });
    } catch (err) {
      const why = err instanceof Deno.errors.AddrInUse
        ? "address already in use"
        : (err as Error).message;
      throw new CircuitError("bad request", `Binding ${hostname}:${port} failed: ${why}`, {
        cause: err,
      });
    }
    const bound = (listener.addr as Deno.NetAddr).port;
    try {
      return [listener, await UdpTransport.bind({ host: hostname, port: bound }, { admit })];
    } catch (err) {
      listener.close();
      if (port === 0 && attempt < PORT_ATTEMPTS) continue;
      throw new CircuitError(
        "bad request",
        `Binding UDP ${hostname}:${bound} for membership failed: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
}
