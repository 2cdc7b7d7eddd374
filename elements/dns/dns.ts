/**
 * The DNS element: an authoritative nameserver on UDP and TCP whose records are set and
 * unset through the element's operations.
 *
 * @module
 */

import { CircuitError } from "../../net/errors.ts";
import { DnsOp } from "../../net/wire/mod.ts";
import type { Element, ElementCall, ElementContext, ElementKind } from "../element.ts";
import { DEFAULT_DNS_CONFIG, type DnsConfig } from "./config.ts";
import { respond } from "./message.ts";
import { ReplyCache, type Rotation } from "./cache.ts";
import { DnsServer, formatAddress } from "./server.ts";
import { RecordStore } from "./store.ts";
import { formatRecord } from "./record.ts";
import { absoluteName, parseRecord } from "./zone.ts";
import { isLoopback, isLoopbackAddress } from "../../net/url.ts";

/** The `peek` shape. */
export interface DnsPeek {
  /** Where to send queries, `HOST:PORT` (never a wildcard). */
  Address: string;
  /** Records in presentation form, by lower-case name, names sorted. */
  Records: Record<string, string[]>;
}

/** The spec `make` takes. */
export interface DnsSpec {
  /**
   * `HOST:PORT`, `:PORT`, `HOST` or absent; a missing port means any, a missing host every
   * interface (the server's loopback address on a loopback-only server).
   */
  addr?: string;
}

/** A wildcard bind address. */
function isWildcard(host: string): boolean {
  return host === "" || host === "0.0.0.0" || host === "::";
}

/**
 * Parse the address a DNS element binds.
 *
 * @param raw `HOST:PORT`, `[V6]:PORT`, `:PORT`, `HOST`, or empty/absent
 * @returns the host to bind (`0.0.0.0` for any) and the port (0 for any)
 * @throws {CircuitError} `bad request` for anything else
 */
export function parseDnsAddr(raw: unknown): { hostname: string; port: number } {
  if (raw === undefined || raw === null || raw === "") return { hostname: "0.0.0.0", port: 0 };
  const bad = () =>
    new CircuitError(
      "bad request",
      `Parsing DNS address failed: expected HOST:PORT, :PORT or HOST, got "${String(raw)}"`,
    );
  if (typeof raw !== "string") throw bad();
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]\s]*))(?::(\d{1,5}))?$/.exec(raw.trim()) ??
    /^([0-9a-fA-F]*:[0-9a-fA-F]*:[0-9a-fA-F:.]*)()$/.exec(raw.trim()); // bare IPv6
  if (!m) throw bad();
  const host = m[1] ?? m[2] ?? "";
  const port = m[3] === undefined ? 0 : Number(m[3]);
  if (port > 65535) throw bad();
  return { hostname: isWildcard(host) ? (host === "::" ? "::" : "0.0.0.0") : host, port };
}

/** A running nameserver. */
export class DnsElement implements Element {
  /** `ls -l` kind. */
  readonly kind = "dns";
  #server: DnsServer;
  #store: RecordStore;
  #config: DnsConfig;
  #address: string;
  #turn = 0;

  /**
   * Wrap a bound server; use {@linkcode DnsElement.start}.
   *
   * @param server the sockets
   * @param store the records it answers from
   * @param config limits
   * @param address the address `peek` shows
   */
  private constructor(server: DnsServer, store: RecordStore, config: DnsConfig, address: string) {
    this.#server = server;
    this.#store = store;
    this.#config = config;
    this.#address = address;
  }

  /**
   * Bind and start serving.
   *
   * @param spec where to bind
   * @param advertiseHost the host shown for a wildcard bind
   * @param config limits
   * @returns the element
   * @throws {CircuitError} `bad request` for a bad or busy address
   */
  static async start(
    spec: DnsSpec,
    advertiseHost: string,
    config: DnsConfig = DEFAULT_DNS_CONFIG,
  ): Promise<DnsElement> {
    const { hostname, port } = parseDnsAddr(spec.addr);
    const store = new RecordStore(config.maxRecords);
    const cache = new ReplyCache();
    let el: DnsElement | null = null;
    const server = await DnsServer.listen({
      hostname,
      port,
      maxTcpConnections: config.maxTcpConnections,
      tcpIdleMs: config.tcpIdleMs,
      bindAttempts: config.bindAttempts,
      handle: (bytes, transport) => {
        const next = el ? el.#turn++ : 0;
        const build = (turn: number, rotation?: Rotation) =>
          respond(bytes, store, {
            transport,
            maxUdpPayloadBytes: config.maxUdpPayloadBytes,
            maxCnameChain: config.maxCnameChain,
            turn,
            rotation,
          });
        return transport === "udp" ? cache.answer(bytes, store.version, next, build) : build(next);
      },
    });
    const shown = isWildcard(hostname) ? advertiseHost : hostname;
    el = new DnsElement(server, store, config, formatAddress(shown, server.port));
    return el;
  }

  /** @returns `{Address, Records}` */
  peek(): DnsPeek {
    return { Address: this.#address, Records: this.#store.toJSON() };
  }

  /** Stop serving and free the port. */
  async scrub(): Promise<void> {
    await this.#server.close();
  }

  /**
   * `set` (`{rr}`: add a record in zone-file syntax) and `unset` (`{name}`).
   *
   * @param op the operation
   * @param call its arguments
   * @returns `set`: the record as stored; `unset`: how many records went
   */
  call(op: string, call: ElementCall): Promise<unknown> {
    try {
      return Promise.resolve(this.#call(op, (call.args ?? {}) as Record<string, unknown>));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #call(op: string, args: Record<string, unknown>): unknown {
    switch (op) {
      case DnsOp.SET: {
        if (typeof args.rr !== "string") {
          throw new CircuitError("bad request", "set needs a record in zone-file syntax");
        }
        const rr = parseRecord(args.rr, { defaultTtlSeconds: this.#config.defaultTtlSeconds });
        this.#store.add(rr);
        return formatRecord(rr);
      }
      case DnsOp.UNSET: {
        if (typeof args.name !== "string" || args.name.trim() === "") {
          throw new CircuitError("bad request", "unset needs a name");
        }
        return this.#store.remove(absoluteName(args.name.trim())); // checked as set checks it
      }
      default:
        throw new CircuitError("bad request", `A dns element has no operation "${op}"`);
    }
  }
}

/** The `dns` element kind: spec `{addr?}`. */
export const dnsKind: ElementKind = {
  name: "dns",
  async make(ctx: ElementContext, spec: unknown): Promise<Element> {
    const s = (spec ?? {}) as DnsSpec;
    const host = ctx.settings.advertiseHost ?? "127.0.0.1";
    if (!isLoopback(host)) return await DnsElement.start(s, host);
    return await DnsElement.start({ ...s, addr: loopbackDnsAddr(s.addr, host) }, host);
  },
};

/**
 * Where a DNS element of a server that serves loopback only (its URL's host is loopback,
 * as without a key) binds: its nameservers stay on loopback too. Without a host, the
 * server's loopback address; with one, it must be a loopback address (`localhost` is
 * 127.0.0.1; a name is never trusted to resolve there).
 *
 * @param raw the spec's address
 * @param serverHost the server's loopback host
 * @returns the address to bind, `HOST:PORT`
 * @throws {CircuitError} `bad request` for anything that is not loopback
 */
export function loopbackDnsAddr(raw: unknown, serverHost: string): string {
  const { hostname, port } = parseDnsAddr(raw); // also rejects a malformed address
  const text = typeof raw === "string" ? raw.trim() : "";
  const noHost = text === "" || /^:\d+$/.test(text); // "" or ":PORT"
  const own = serverHost === "localhost" ? "127.0.0.1" : serverHost;
  const bind = noHost ? own : hostname === "localhost" ? "127.0.0.1" : hostname;
  if (!isLoopbackAddress(bind)) {
    throw new CircuitError(
      "bad request",
      `Refusing to serve DNS on ${hostname}: this server serves loopback only, so its nameservers do too; give a loopback address, or start the server on another address with --hmac KEYFILE`,
    );
  }
  return `${bind.includes(":") ? `[${bind}]` : bind}:${port}`;
}
