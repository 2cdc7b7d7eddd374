/**
 * Multicast discovery: servers announce their URL on a group; clients ask the group and
 * take the first unicast answer. With a key every packet carries a timestamp, a nonce
 * and an HMAC-SHA256; forged, stale and replayed packets are dropped and counted.
 *
 * Packets are msgpack maps: `{v: 1, t, url?, ts, nonce, re?, mac?}` where `t` is
 * `announce`, `query` or `reply`, `re` is the query's nonce a reply answers, and `mac`
 * covers the packet without `mac` under the label `circuit/1 discovery`.
 *
 * Signing and checking are those of `net/datagram.ts` (the `field` placement). The codec
 * and the verifier are plain; the sockets (node:dgram, which sends and joins groups on an
 * interface address without any route) are at the edges.
 *
 * @module
 */

import dgram from "node:dgram";
import { CircuitError } from "./errors.ts";
import {
  type DatagramDropReason,
  type DatagramFormat,
  DatagramVerifier,
  newNonce,
  sealDatagram,
  type StampedBody,
} from "./datagram.ts";

/** Discovery timings and bounds. */
export interface DiscoveryConfig {
  /** Announcement interval while starting, in ms. @default {250} */
  announceFastMs: number;
  /** How long the fast phase lasts, in ms. @default {3000} */
  fastPhaseMs: number;
  /** Announcement interval afterwards (never silent), in ms. @default {2000} */
  announceSteadyMs: number;
  /** Packets whose timestamp is further than this from ours are stale, in ms. @default {30000} */
  maxSkewMs: number;
  /**
   * Nonces remembered to catch replays, each for two skew windows (oldest forgotten first
   * when full). @default {8192}
   */
  nonceCacheSize: number;
}

/** The defaults, for a LAN. */
export const DEFAULT_DISCOVERY_CONFIG: Readonly<DiscoveryConfig> = Object.freeze({
  announceFastMs: 250,
  fastPhaseMs: 3000,
  announceSteadyMs: 2000,
  maxSkewMs: 30_000,
  nonceCacheSize: 8192,
});

/** A multicast group and port. */
export interface Group {
  /** IPv4 multicast address. */
  address: string;
  /** UDP port. */
  port: number;
}

/** A decoded discovery packet. */
export interface Packet {
  /** What it is. */
  t: "announce" | "query" | "reply";
  /** The sender's URL (announce, reply). */
  url?: string;
  /** Sender's clock, ms since the epoch. */
  ts: number;
  /** Random, unique per packet. */
  nonce: Uint8Array;
  /** For a reply: the nonce of the query it answers. */
  re?: Uint8Array;
}

/** Bytes of the nonces we send. */
const NONCE_BYTES = 16;
/** Longest nonce (and `re`) accepted, in bytes: ours are 16; the cache holds them. */
const MAX_NONCE_BYTES = 32;
/** Longest URL accepted in an announcement or reply, in characters. */
const MAX_URL_LENGTH = 1024;

/** A URL a peer may send: bounded, visible ASCII only (it reaches logs and dials). */
function isUrlText(v: unknown): boolean {
  return typeof v === "string" && v.length > 0 && v.length <= MAX_URL_LENGTH &&
    /^[\x21-\x7e]+$/.test(v);
}

/** Why a packet was dropped. */
export type DropReason = DatagramDropReason;

/**
 * Parse `GROUP:PORT`.
 *
 * @param text e.g. `228.8.8.8:7711`
 * @returns the group
 * @throws {CircuitError} `bad request` when it is not an IPv4 multicast address and port
 */
export function parseGroup(text: string): Group {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3}):(\d{1,5})$/.exec(text.trim());
  const octets = m ? m.slice(1, 5).map(Number) : [];
  const port = m ? Number(m[5]) : 0;
  if (
    !m || octets.some((o) => o > 255) || octets[0] < 224 || octets[0] > 239 || !port || port > 65535
  ) {
    throw new CircuitError(
      "bad request",
      `Parsing discovery group failed: expected an IPv4 multicast GROUP:PORT like 228.8.8.8:7711, got "${text}"`,
    );
  }
  return { address: octets.join("."), port };
}

/** Discovery packets: the MAC as the body's `mac` entry, under its own label. */
const DISCOVERY_FORMAT: DatagramFormat<Packet> = {
  label: "circuit/1 discovery",
  mac: "field",
  read: readPacket,
};

/** A decoded body as a packet, or null when its shape or bounds are wrong. */
function readPacket(body: Record<string, unknown>): StampedBody<Packet> | null {
  const t = body.t;
  const bytesOf = (v: unknown, min: number) =>
    v instanceof Uint8Array && v.length >= min && v.length <= MAX_NONCE_BYTES;
  if (
    body.v !== 1 || (t !== "announce" && t !== "query" && t !== "reply") ||
    !Number.isFinite(body.ts) || !bytesOf(body.nonce, 8) ||
    (body.re !== undefined && !bytesOf(body.re, 1)) || (t !== "query" && !isUrlText(body.url))
  ) {
    return null;
  }
  const value = body as unknown as Packet;
  return { value, ts: value.ts, nonce: value.nonce, scope: t };
}

/**
 * Encode a packet, signed when there is a key.
 *
 * @param p the packet
 * @param key the cluster key
 * @returns the datagram
 */
export function encodePacket(p: Packet, key?: Uint8Array): Uint8Array {
  return sealDatagram(DISCOVERY_FORMAT, { v: 1, ...p }, key);
}

/** Checks discovery packets and remembers nonces; counts what it drops. */
export class PacketVerifier extends DatagramVerifier<Packet> {
  /**
   * Make a verifier with an empty nonce cache.
   *
   * @param key the cluster key; without one, packets carry no MAC
   * @param config skew and cache bounds
   */
  constructor(key: Uint8Array | undefined, config: DiscoveryConfig = DEFAULT_DISCOVERY_CONFIG) {
    super(DISCOVERY_FORMAT, key, {
      maxSkewMs: config.maxSkewMs,
      nonceCacheSize: config.nonceCacheSize,
    });
  }
}

/** A fresh packet nonce. */
function nonce(): Uint8Array {
  return newNonce(NONCE_BYTES);
}

/**
 * When the next announcement is due: fast while starting, then steady, with ±20 % jitter
 * so servers started together do not stay in step.
 *
 * @param sinceStartMs time since the announcer started
 * @param config the intervals
 * @param random a number in [0, 1)
 * @returns the delay in ms
 */
export function nextAnnounceDelayMs(
  sinceStartMs: number,
  config: DiscoveryConfig,
  random: number,
): number {
  const base = sinceStartMs < config.fastPhaseMs ? config.announceFastMs : config.announceSteadyMs;
  return Math.round(base * (0.8 + 0.4 * random));
}

/** Options of {@linkcode Announcer}. */
export interface AnnouncerOptions {
  /** The group. */
  group: Group;
  /** The interface address to send and receive multicast on. */
  interfaceAddress: string;
  /** Our URL, announced and given in replies. */
  url: string;
  /** The cluster key. */
  key?: Uint8Array;
  /** Called with every valid announcement's URL (ours included). */
  onAnnounce(url: string): void;
  /** Timings. */
  config?: Partial<DiscoveryConfig>;
}

/** A server's side of discovery: announces, hears announcements, answers queries. */
export class Announcer {
  #o: AnnouncerOptions;
  #config: DiscoveryConfig;
  #socket: dgram.Socket;
  #verifier: PacketVerifier;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #started = Date.now();
  #closed = false;
  /** Announcements sent. */
  sent = 0;

  /** @param options group, interface, URL, key, listener */
  constructor(options: AnnouncerOptions) {
    this.#o = options;
    this.#config = { ...DEFAULT_DISCOVERY_CONFIG, ...options.config };
    this.#verifier = new PacketVerifier(options.key, this.#config);
    this.#socket = dgram.createSocket({ type: "udp4", reuseAddr: true });
  }

  /** Packets dropped, by reason (for `stk`). */
  get dropped(): Record<DropReason, number> {
    return { ...this.#verifier.dropped };
  }

  /** Nonces forgotten early because the cache was full (replays of them would pass). */
  get evicted(): number {
    return this.#verifier.evicted;
  }

  /**
   * Bind the group port, join the group on the interface, start announcing.
   *
   * @throws {CircuitError} `bad request` when the socket cannot be set up
   */
  async start(): Promise<void> {
    const s = this.#socket;
    await new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.bind(this.#o.group.port, () => {
        s.off("error", reject);
        resolve();
      });
    }).catch((err) => {
      throw new CircuitError(
        "bad request",
        `Joining discovery group ${this.#o.group.address}:${this.#o.group.port} failed: ${err.message}`,
      );
    });
    try {
      s.addMembership(this.#o.group.address, this.#o.interfaceAddress);
      s.setMulticastInterface(this.#o.interfaceAddress);
      s.setMulticastLoopback(true); // other servers on this host share the group
    } catch (err) {
      s.close();
      throw new CircuitError(
        "bad request",
        `Joining discovery group ${this.#o.group.address} on ${this.#o.interfaceAddress} failed: ${
          (err as Error).message
        }`,
      );
    }
    s.on("error", () => {}); // a failed send is retried by the next announcement
    s.on("message", (msg, rinfo) => this.#receive(msg, rinfo));
    this.#announce();
  }

  /** Stop announcing and close the socket. */
  stop(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    try {
      this.#socket.close();
    } catch { /* closed */ }
  }

  #announce(): void {
    if (this.#closed) return;
    const pkt = encodePacket(
      { t: "announce", url: this.#o.url, ts: Date.now(), nonce: nonce() },
      this.#o.key,
    );
    this.#socket.send(pkt, this.#o.group.port, this.#o.group.address);
    this.sent++;
    const delay = nextAnnounceDelayMs(Date.now() - this.#started, this.#config, Math.random());
    this.#timer = setTimeout(() => this.#announce(), delay);
    Deno.unrefTimer(this.#timer as unknown as number);
  }

  #receive(msg: Uint8Array, rinfo: dgram.RemoteInfo): void {
    try {
      this.#handle(msg, rinfo);
    } catch {
      // A listener or a reply that throws must not reach the socket's event loop: an
      // uncaught error there would end the server.
    }
  }

  #handle(msg: Uint8Array, rinfo: dgram.RemoteInfo): void {
    const p = this.#verifier.verify(new Uint8Array(msg));
    if (!p) return;
    if (p.t === "announce" && p.url) this.#o.onAnnounce(p.url);
    if (p.t === "query") {
      const reply = encodePacket(
        { t: "reply", url: this.#o.url, ts: Date.now(), nonce: nonce(), re: p.nonce },
        this.#o.key,
      );
      this.#socket.send(reply, rinfo.port, rinfo.address);
    }
  }
}

/** Options of {@linkcode discover}. */
export interface DiscoverOptions {
  /** The cluster key. */
  key?: Uint8Array;
  /** Give up after this long, in ms. @default {3000} */
  timeoutMs?: number;
  /** Cancels the search. */
  signal?: AbortSignal;
  /**
   * Interface addresses to ask on; by default every non-loopback IPv4 address.
   */
  interfaceAddresses?: string[];
}

/**
 * Find a live server by asking a multicast group. Only our own outgoing query and the
 * unicast replies to it are used: the client never joins the group.
 *
 * @param group `GROUP:PORT` or a parsed group
 * @param options key, timeout, signal
 * @returns the URL of the first server that answered
 * @throws {CircuitError} `timeout` when nobody answers, `bad request` for a bad group
 */
export async function discover(
  group: string | Group,
  options: DiscoverOptions = {},
): Promise<string> {
  const g = typeof group === "string" ? parseGroup(group) : group;
  const timeoutMs = options.timeoutMs ?? 3000;
  const ifaces = options.interfaceAddresses ??
    Deno.networkInterfaces().filter((i) => i.family === "IPv4" && !i.address.startsWith("127."))
      .map((i) => i.address);
  const verifier = new PacketVerifier(options.key);
  const s = dgram.createSocket({ type: "udp4" });
  const ask = nonce();
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new CircuitError(
            "timeout",
            `Discovering a server on ${g.address}:${g.port} failed: nobody answered within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      const onAbort = () => reject(new CircuitError("aborted", "Discovering a server was aborted"));
      options.signal?.addEventListener("abort", onAbort, { once: true });
      const done = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      };
      s.on("error", () => {});
      s.on("message", (msg) => {
        const p = verifier.verify(new Uint8Array(msg));
        if (p?.t !== "reply" || !p.url || !p.re || !sameBytes(p.re, ask)) return;
        done();
        resolve(p.url);
      });
      s.bind(0, () => {
        const pkt = encodePacket({ t: "query", ts: Date.now(), nonce: ask }, options.key);
        for (const addr of ifaces) {
          try {
            s.setMulticastInterface(addr);
            s.send(pkt, g.port, g.address);
          } catch { /* an interface that cannot send multicast */ }
        }
      });
    });
  } finally {
    try {
      s.close();
    } catch { /* closed */ }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
