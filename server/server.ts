/**
 * The daemon: lock the var directory, read the key, bind, assemble the components
 * (`assembly.ts`), serve, join, and stop cleanly on SIGTERM, SIGINT or `suicide`
 * (`lifecycle.ts`).
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";
import { readKeyFile } from "../net/keys.ts";
import { formatUrl, isLoopback, newServerId } from "../net/url.ts";
import type { TransportConfig } from "../net/config.ts";
import type { MembershipConfig, MembershipProfile } from "../net/membership/mod.ts";
import type { ElementSettings } from "../elements/element.ts";
import { planBind, readDefaultIface, readInterfaces } from "./addr.ts";
import { type DiscoverySetup, ServerAssembly } from "./assembly.ts";
import { bindPorts, type BoundPorts } from "./bind.ts";
import {
  DEFAULT_DOCKER_HOST,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_OUTPUT_BOUND_BYTES,
  DEFAULT_OUTPUT_HOLD_MS,
  DEFAULT_SCRUB_GRACE_MS,
  SERVER_LOG_NAME,
} from "./config.ts";
import { Lifecycle } from "./lifecycle.ts";
import { serveMetrics } from "./metrics.ts";
import {
  logger,
  type ServerLogFormat,
  type ServerLogLevel,
  setupLogging,
  stderrIsJournal,
} from "./log.ts";
import { defaultVarDir, lockVarDir } from "./var_dir.ts";

/** Options of {@linkcode startServer}, one per `circuit start` flag. */
export interface ServerOptions {
  /** `-a HOST:PORT`; port 0 picks one. */
  addr?: string;
  /** `--if IFACE`: bind that interface's IPv4 address. */
  iface?: string;
  /** `-j SEED`: join the cluster of these members (URLs or `HOST:PORT`s) at start. */
  join?: string | readonly string[];
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
  /** `--log-level`: the lowest level logged. @default {"info"} */
  logLevel?: ServerLogLevel;
  /** `--log-format`: text lines or JSON objects. @default {"text"} */
  logFormat?: ServerLogFormat;
  /**
   * `--log-file`: also write the log to this file; null: stderr only. By default
   * `server.log` in the var directory, unless stderr goes to the systemd journal.
   */
  logFile?: string | null;
  /** `--metrics HOST:PORT`: serve `/metrics` and `/health` there. Off by default. */
  metrics?: string;
  /** Stop cleanly on SIGTERM and SIGINT (the CLI sets this). @default {false} */
  handleSignals?: boolean;
}

/** A running server. */
export interface RunningServer {
  /** Its URL. */
  url: string;
  /** Its id (16 hex digits). */
  id: string;
  /** The metrics address (`HOST:PORT`) when `metrics` was given. */
  metrics?: string;
  /** Resolves when the server has stopped. */
  stopped: Promise<void>;
  /** Stop cleanly: announce leave, scrub elements, close, unlock. */
  stop(): Promise<void>;
}

/**
 * Start a server: check the flags, lock the var directory, bind, assemble, serve.
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
  const discovery = await loadDiscovery(options.discover, plan.advertise);
  const lifecycle = new Lifecycle();
  const varDir = await lockVarDir(options.varDir ?? defaultVarDir(id), {
    sharedParent: options.varDir === undefined,
  });
  lifecycle.onStop("var dir", () => varDir.release());
  const dockerHost = options.docker ? await enableDocker(varDir.path, lifecycle) : null;
  lifecycle.onStop(
    "log file",
    setupLogging({
      file: logFile(options, varDir.path),
      level: options.logLevel,
      format: options.logFormat,
    }),
  );
  const log = lifecycle.log = logger("server");
  let bound: BoundPorts;
  try {
    bound = await bindPorts({ hostname: plan.hostname, port: plan.port, keyed: !!key });
  } catch (err) {
    await lifecycle.stop(true);
    throw err;
  }
  const url = formatUrl({ host: plan.advertise, port: bound.port, pid: Deno.pid, id });
  log.debug(`bound ${plan.hostname}:${bound.port} (tcp and udp)`);
  let server: ServerAssembly;
  try {
    server = new ServerAssembly({
      id,
      url,
      joined: new Date().toISOString(),
      advertise: plan.advertise,
      ...bound,
      key,
      varDir: varDir.path,
      settings: elementSettings(options, {
        varDir: varDir.path,
        dockerHost,
        advertiseHost: plan.advertise,
      }),
      membership: options.membership,
      transport: options.transport,
      discovery,
    }, lifecycle);
  } catch (err) {
    // A bad membership config, say: nothing was started, and the ports are still ours.
    bound.listener.close();
    await bound.udp.close();
    await lifecycle.stop(true);
    throw err;
  }
  const metrics = options.metrics
    ? await startMetrics(server, options, !!key, lifecycle)
    : undefined;
  await server.start({ join: options.join, handleSignals: options.handleSignals });
  log.info(`serving ${url} (var ${varDir.path})`);
  if (metrics) log.info(`metrics on http://${metrics}/metrics`);
  return { url, id, metrics, stopped: lifecycle.stopped, stop: () => lifecycle.stop() };
}

/** Where the log goes besides stderr (see {@linkcode ServerOptions.logFile}). */
function logFile(options: ServerOptions, varDir: string): string | null {
  if (options.logFile !== undefined) return options.logFile;
  return stderrIsJournal() ? null : `${varDir}/${SERVER_LOG_NAME}`;
}

/**
 * Serve `/metrics` and `/health`; stopped with the listener.
 *
 * @returns the bound address
 * @throws {CircuitError} for a refused or busy address (the server stops, quietly)
 */
async function startMetrics(
  server: ServerAssembly,
  options: ServerOptions,
  keyed: boolean,
  lifecycle: Lifecycle,
): Promise<string> {
  try {
    const m = serveMetrics({
      addr: options.metrics!,
      keyed,
      insecure: !!options.insecure,
      sources: server.metricsSources(),
    });
    lifecycle.onStop("listener", () => m.close());
    return m.addr;
  } catch (err) {
    await lifecycle.stop(true);
    throw err;
  }
}

/**
 * Discovery's UDP code, loaded only for servers that use it.
 *
 * @throws {CircuitError} `bad request` for a bad group, or a loopback address
 */
async function loadDiscovery(
  text: string | undefined,
  advertise: string,
): Promise<DiscoverySetup | undefined> {
  if (!text) return undefined;
  const module = await import("../net/discovery.ts");
  const group = module.parseGroup(text);
  if (isLoopback(advertise)) {
    throw new CircuitError(
      "bad request",
      `Discovery on ${text} needs a non-loopback address (loopback carries no multicast): use --if IFACE or -a HOST:PORT, with --hmac`,
    );
  }
  return { module, group, text };
}

/**
 * Check the Docker engine and remove what an earlier server in this var directory left.
 *
 * @returns the engine's DOCKER_HOST
 * @throws {CircuitError} `unreachable` when the engine cannot be used (the server stops)
 */
async function enableDocker(varDir: string, lifecycle: Lifecycle): Promise<string> {
  const dockerHost = Deno.env.get("DOCKER_HOST") || DEFAULT_DOCKER_HOST;
  try {
    const docker = await import("../elements/docker/mod.ts");
    const engine = docker.engineFor(dockerHost);
    await docker.checkDocker(engine);
    await docker.removeLeftovers(engine, varDir);
  } catch (err) {
    await lifecycle.stop(true);
    throw new CircuitError(
      "unreachable",
      `Enabling Docker elements failed: ${(err as Error).message}`,
    );
  }
  return dockerHost;
}

/** The settings every element reads: the flags, or their defaults (`config.ts`). */
function elementSettings(
  options: ServerOptions,
  server: Pick<ElementSettings, "varDir" | "dockerHost" | "advertiseHost">,
): ElementSettings {
  return {
    outputBoundBytes: options.outputBoundBytes ?? DEFAULT_OUTPUT_BOUND_BYTES,
    outputHoldMs: options.outputHoldMs ?? DEFAULT_OUTPUT_HOLD_MS,
    scrubGraceMs: options.scrubGraceMs ?? DEFAULT_SCRUB_GRACE_MS,
    spoolDir: `${server.varDir}/spool`,
    varDir: server.varDir,
    dockerHost: server.dockerHost,
    maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    advertiseHost: server.advertiseHost,
  };
}
