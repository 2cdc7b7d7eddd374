/**
 * `start --metrics HOST:PORT`: an HTTP listener with `/metrics` in the Prometheus text
 * format (version 0.0.4) and `/health`. Off by default; like the main bind, a
 * non-loopback address needs a key (or `--insecure`). Every number comes from what the
 * server already gathers for `stk` (`stk.ts`), read at scrape time.
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";
import { isLoopbackAddress } from "../net/url.ts";
import type { Element } from "../elements/element.ts";
import { parseHostPort } from "./addr.ts";
import { METRICS_CONTENT_TYPE } from "./config.ts";

/** Where the metrics come from, read at every scrape. */
export interface MetricsSources {
  /** The `stk` dump (`describeServer` in `stk.ts`). */
  describe(): Record<string, unknown>;
  /** Every element of this server. */
  elements(): Array<[string[], Element]>;
  /** Log lines lost so far (`droppedLogLines` in `log.ts`). */
  droppedLogLines(): number;
  /** True while the membership protocol runs and the server is not stopping. */
  live(): boolean;
}

/** One sample: labels and value. */
type Sample = [Record<string, string>, number];

/** Builds the text format: one HELP and TYPE per family, then its samples. */
class Exposition {
  #lines: string[] = [];

  /**
   * Add a family.
   *
   * @param name metric name, `circuit_…`
   * @param type `gauge` or `counter`
   * @param help one sentence
   * @param samples labels and values
   */
  add(name: string, type: "gauge" | "counter", help: string, samples: Sample[]): void {
    this.#lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) {
      const l = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",");
      this.#lines.push(`${name}${l ? `{${l}}` : ""} ${Number.isFinite(value) ? value : 0}`);
    }
  }

  /** @returns the exposition, ending with a newline */
  text(): string {
    return this.#lines.join("\n") + "\n";
  }
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

/** A number at `obj[k1][k2]…`, or 0. */
function num(obj: unknown, ...keys: string[]): number {
  let o = obj;
  for (const k of keys) o = (o as Record<string, unknown> | null | undefined)?.[k];
  return typeof o === "number" ? o : 0;
}

/** `{a: 1, b: 2}` as samples labelled `label="a"`, …. */
function byLabel(label: string, obj: unknown): Sample[] {
  if (typeof obj !== "object" || obj === null) return [];
  return Object.entries(obj).filter(([, v]) => typeof v === "number")
    .map(([k, v]) => [{ [label]: k }, v as number]);
}

/** Counts by a key, as samples. */
function counted(label: string, keys: string[]): Sample[] {
  const m = new Map<string, number>();
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
  return [...m].sort(([a], [b]) => a < b ? -1 : 1).map(([k, n]) => [{ [label]: k }, n]);
}

/** Processes whose `peek` says they have not ended. */
function runningProcs(elements: Array<[string[], Element]>): number {
  let n = 0;
  for (const [, el] of elements) {
    if (el.kind !== "proc") continue;
    const phase = (el.peek() as { Phase?: string })?.Phase;
    if (phase === "running" || phase === "stopped" || phase === "continued") n++;
  }
  return n;
}

/** The membership families, from `stk`'s `Membership` section. */
function addMembership(e: Exposition, ms: Record<string, unknown> | undefined): void {
  e.add(
    "circuit_members",
    "gauge",
    "Members known to the membership protocol, by state.",
    byLabel("state", ms?.members),
  );
  e.add(
    "circuit_membership_refutations_total",
    "counter",
    "Suspicions of this server it refuted.",
    [[{}, num(ms, "refutations")]],
  );
  e.add(
    "circuit_membership_probes_total",
    "counter",
    "Membership probes sent.",
    [[{}, num(ms, "probes", "probes")]],
  );
  e.add(
    "circuit_membership_probe_results_total",
    "counter",
    "Membership probe results, by outcome (failed probes raise suspicions).",
    byLabel("outcome", { ...(ms?.probes as object), probes: undefined }),
  );
  e.add("circuit_membership_packets_total", "counter", "Membership packets, by direction.", [
    [{ direction: "sent" }, num(ms, "packets", "sent")],
    [{ direction: "received" }, num(ms, "packets", "received")],
  ]);
  e.add(
    "circuit_membership_packets_dropped_total",
    "counter",
    "Membership packets dropped, by reason.",
    byLabel("reason", (ms?.packets as Record<string, unknown>)?.dropped),
  );
  e.add("circuit_membership_broadcast_queue", "gauge", "Gossip messages waiting to be sent.", [[
    {},
    num(ms, "queue", "depth"),
  ]]);
}

/**
 * The `/metrics` page.
 *
 * @param s the sources
 * @returns the Prometheus text exposition
 */
export function renderMetrics(s: MetricsSources): string {
  const stk = s.describe();
  const elements = s.elements();
  const e = new Exposition();
  e.add("circuit_up", "gauge", "1 while the server is live (see /health).", [[
    {},
    s.live() ? 1 : 0,
  ]]);
  e.add("circuit_uptime_seconds", "gauge", "Seconds since the server process started.", [
    [{}, num(stk, "UptimeMs") / 1000],
  ]);
  addMembership(e, stk.Membership as Record<string, unknown>);
  const conns = (stk.Connections as Array<{ Role?: string }>) ?? [];
  e.add(
    "circuit_connections",
    "gauge",
    "Accepted connections, by role.",
    counted("role", conns.map((c) => c.Role ?? "unknown")),
  );
  e.add("circuit_peers", "gauge", "Connections this server dialed to other members.", [[
    {},
    (stk.Peers as unknown[])?.length ?? 0,
  ]]);
  e.add("circuit_listener_accepted_total", "counter", "Connections accepted.", [[
    {},
    num(stk, "Listener", "Accepted"),
  ]]);
  e.add(
    "circuit_listener_refused_total",
    "counter",
    "Connections refused before the handshake, by limit.",
    [
      [{ limit: "total" }, num(stk, "Listener", "RefusedOverTotal")],
      [{ limit: "per_address" }, num(stk, "Listener", "RefusedOverPerAddress")],
    ],
  );
  e.add("circuit_listener_accept_errors_total", "counter", "Errors accepting connections.", [[
    {},
    num(stk, "Listener", "AcceptErrors"),
  ]]);
  e.add("circuit_calls_in_flight", "gauge", "Operations under way.", [[
    {},
    (stk.InFlight as unknown[])?.length ?? 0,
  ]]);
  e.add(
    "circuit_elements",
    "gauge",
    "Elements of this server, by kind.",
    counted("kind", elements.map(([, el]) => el.kind)),
  );
  e.add("circuit_processes_running", "gauge", "Processes that have not ended.", [[
    {},
    runningProcs(elements),
  ]]);
  e.add(
    "circuit_spool_memory_bytes",
    "gauge",
    "Bytes of channel and output spools held in memory.",
    [[{}, num(stk, "Spool", "MemoryBytes")]],
  );
  e.add("circuit_oplog_pending_lines", "gauge", "Operation log lines waiting for the disk.", [[
    {},
    num(stk, "OpLog", "Pending"),
  ]]);
  e.add(
    "circuit_oplog_lost_lines_total",
    "counter",
    "Operation log lines lost because the disk did not take them.",
    [[{}, num(stk, "OpLog", "Lost")]],
  );
  e.add(
    "circuit_log_lines_dropped_total",
    "counter",
    "Server log lines left out by rate limits or not written.",
    [[{}, s.droppedLogLines()]],
  );
  e.add(
    "circuit_memory_bytes",
    "gauge",
    "Memory of the server process, by kind.",
    byLabel("kind", stk.Memory),
  );
  return e.text();
}

/**
 * `/health`: whether the server takes connections and runs membership.
 *
 * @param s the sources
 * @returns true when the listener accepts and membership is live
 */
export function isHealthy(s: MetricsSources): boolean {
  // "failing": accept keeps erroring (out of descriptors, say), so new clients are not served.
  return s.live() && (s.describe().Listener as { State?: string })?.State === "ok";
}

/** Options of {@linkcode serveMetrics}. */
export interface MetricsServerOptions {
  /** `HOST:PORT` (port 0: any). */
  addr: string;
  /** Whether the server has a cluster key (a non-loopback address needs one). */
  keyed: boolean;
  /** `--insecure`: allow a non-loopback address without a key. */
  insecure: boolean;
  /** Where the numbers come from. */
  sources: MetricsSources;
}

/** A running metrics listener. */
export interface MetricsServer {
  /** The bound address, `HOST:PORT`. */
  addr: string;
  /** Stop serving. */
  close(): Promise<void>;
}

/**
 * Serve `/metrics` and `/health` on `addr`.
 *
 * @param o address, key presence, sources
 * @returns the listener
 * @throws {CircuitError} `bad request` for a bad address, or a non-loopback address
 *   without a key and without `--insecure`
 */
export function serveMetrics(o: MetricsServerOptions): MetricsServer {
  const { host, port } = parseHostPort(o.addr);
  const hostname = host === "localhost" ? "127.0.0.1" : host;
  if (!o.keyed && !o.insecure && !isLoopbackAddress(hostname)) {
    throw new CircuitError(
      "bad request",
      `Refusing to serve metrics on ${hostname} without a key: use a loopback address, --hmac KEYFILE, or --insecure`,
    );
  }
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({ hostname, port, onListen: () => {} }, (req) => respond(req, o.sources));
  } catch (err) {
    throw new CircuitError(
      "busy",
      `Binding metrics on ${o.addr} failed: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const a = server.addr;
  const shown = a.hostname.includes(":") ? `[${a.hostname}]` : a.hostname;
  return { addr: `${shown}:${a.port}`, close: () => server.shutdown() };
}

/** Answer one request. */
function respond(req: Request, sources: MetricsSources): Response {
  const path = new URL(req.url).pathname;
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new Response("method not allowed\n", { status: 405 });
  }
  if (path === "/metrics") {
    return new Response(renderMetrics(sources), {
      headers: { "content-type": METRICS_CONTENT_TYPE },
    });
  }
  if (path === "/health") {
    const ok = isHealthy(sources);
    return new Response(ok ? "ok\n" : "unavailable\n", { status: ok ? 200 : 503 });
  }
  return new Response("not found\n", { status: 404 });
}
