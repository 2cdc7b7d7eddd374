/**
 * Membership packets and the UDP socket that carries them.
 *
 * A packet is a compound: several encoded messages piggybacked in one datagram of at most
 * `maxPacketBytes`. Its body is a msgpack map `{v, ts, n, m}`: protocol version, the
 * sender's clock (ms since the epoch), a 12-byte random nonce, and the messages as an
 * array of binaries. With a cluster key the datagram is `mac ‖ body`, where `mac` is the
 * 32-byte HMAC-SHA256 of the label `circuit/1 membership` and the body; forged, stale
 * (outside the skew window) and replayed (nonce seen) packets are dropped and counted,
 * as in `net/discovery.ts`.
 *
 * The codec and the verifier are plain; the socket (node:dgram) is at the edge, behind
 * {@linkcode PacketTransport} so tests can drop packets.
 *
 * @module
 */

import { timingSafeEqual } from "node:crypto";
import { hmacSha256 } from "../hmac.ts";
import { Packr } from "msgpackr/pack";
import { CircuitError } from "../errors.ts";
import type { MembershipConfig } from "./config.ts";
import { type Addr, addrKey, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN } from "./messages.ts";

const packr = new Packr({ useRecords: false, moreTypes: false });
const LABEL = "circuit/1 membership";
const MAC_BYTES = 32;
const NONCE_BYTES = 12;
/** Upper bound of the body bytes that are not messages: map, version, clock, nonce, array. */
const ENVELOPE_BYTES = 40;
/** How long closing waits for sends still in flight, in ms. */
const CLOSE_DRAIN_MS = 200;

/** Why the verifier dropped a packet. */
export type VerifyDropReason = "malformed" | "forged" | "stale" | "replayed";
/**
 * Why a packet was dropped: the verifier's reasons, and `foreign` for a datagram the
 * transport's `admit` hook refused before anything in it was read.
 */
export type DropReason = VerifyDropReason | "foreign";

/**
 * Decides whether a datagram from an address may be read at all (say, only from the
 * server's own user on loopback). Called once per datagram before anything in it is
 * decoded; it should be cheap (cache), since the socket is read one datagram at a time.
 */
export type AdmitFn = (from: { hostname: string; port: number }) => boolean | Promise<boolean>;

/** Options of {@linkcode UdpTransport.bind}. */
export interface UdpTransportOptions {
  /**
   * When given, consulted for every datagram received (keyed or not) before it is
   * decoded; a datagram refused (false, a rejected promise or a throw) is dropped and
   * counted in `foreign`. A promise is awaited before the next datagram is read, so a
   * slow hook slows reception, never piles up work. Meant for keyless clusters, where no
   * MAC tells a member from any other sender.
   */
  admit?: AdmitFn;
}

/**
 * Bytes a message takes inside a packet: itself plus its binary header.
 *
 * @param bytes the encoded message
 * @returns its cost in bytes
 */
export function messageCost(bytes: Uint8Array): number {
  return bytes.length + (bytes.length < 256 ? 2 : bytes.length < 65_536 ? 3 : 5);
}

/**
 * Bytes available for messages (by {@linkcode messageCost}) in one packet.
 *
 * @param maxPacketBytes the datagram bound
 * @param keyed whether packets carry a MAC
 * @returns the budget
 */
export function packetBudget(maxPacketBytes: number, keyed: boolean): number {
  return maxPacketBytes - ENVELOPE_BYTES - (keyed ? MAC_BYTES : 0);
}

function macOf(key: Uint8Array, body: Uint8Array): Uint8Array {
  return hmacSha256(key, LABEL, body);
}

/**
 * Build a datagram from encoded messages, signed when there is a key.
 *
 * @param messages encoded messages whose costs fit {@linkcode packetBudget}
 * @param key the cluster key
 * @param now our clock, ms since the epoch
 * @returns the datagram
 */
export function encodePacket(
  messages: Uint8Array[],
  key?: Uint8Array,
  now: number = Date.now(),
): Uint8Array {
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const body: Uint8Array = packr.pack({ v: PROTOCOL_VERSION_MAX, ts: now, n: nonce, m: messages });
  if (!key) return body;
  const out = new Uint8Array(MAC_BYTES + body.length);
  out.set(macOf(key, body));
  out.set(body, MAC_BYTES);
  return out;
}

/** Checks packets and remembers nonces; counts what it drops. */
export class PacketVerifier {
  #key: Uint8Array | undefined;
  #skewMs: number;
  #cacheSize: number;
  #seen = new Map<string, number>();
  /** Packets dropped, by reason. */
  readonly dropped: Record<VerifyDropReason, number> = {
    malformed: 0,
    forged: 0,
    stale: 0,
    replayed: 0,
  };
  /** Nonces forgotten early because the cache was full (replays of them would pass). */
  evicted = 0;

  /**
   * Make a verifier with an empty nonce cache.
   *
   * @param key the cluster key; without one, packets carry no MAC
   * @param config the replay window and the nonce cache bound
   */
  constructor(
    key: Uint8Array | undefined,
    config: Pick<MembershipConfig, "packetMaxSkewMs" | "nonceCacheSize">,
  ) {
    this.#key = key;
    this.#skewMs = config.packetMaxSkewMs;
    this.#cacheSize = config.nonceCacheSize;
  }

  /**
   * Verify a datagram.
   *
   * @param bytes what arrived
   * @param now our clock, ms since the epoch
   * @returns the encoded messages it carries, or null when dropped (and counted)
   */
  verify(bytes: Uint8Array, now: number = Date.now()): Uint8Array[] | null {
    let body = bytes;
    if (this.#key) {
      if (bytes.length <= MAC_BYTES) return this.#drop("forged");
      body = bytes.subarray(MAC_BYTES);
      const want = macOf(this.#key, body);
      if (!timingSafeEqual(want, bytes.subarray(0, MAC_BYTES))) return this.#drop("forged");
    }
    let raw: Record<string, unknown>;
    try {
      raw = packr.unpack(body);
    } catch {
      return this.#drop("malformed");
    }
    if (
      !raw || typeof raw !== "object" || typeof raw.v !== "number" ||
      raw.v < PROTOCOL_VERSION_MIN || raw.v > PROTOCOL_VERSION_MAX || !Number.isFinite(raw.ts) ||
      !(raw.n instanceof Uint8Array) || raw.n.length !== NONCE_BYTES || !Array.isArray(raw.m) ||
      !raw.m.every((m) => m instanceof Uint8Array)
    ) {
      return this.#drop("malformed");
    }
    if (Math.abs(now - (raw.ts as number)) > this.#skewMs) return this.#drop("stale");
    const id = Array.from(raw.n, (b) => b.toString(16).padStart(2, "0")).join("");
    this.#forgetOld(now);
    if (this.#seen.has(id)) return this.#drop("replayed");
    this.#seen.set(id, now);
    return raw.m as Uint8Array[];
  }

  /** A nonce can be replayed for up to two skew windows after it arrived. */
  #forgetOld(now: number): void {
    for (const [id, at] of this.#seen) {
      if (at >= now - 2 * this.#skewMs && this.#seen.size < this.#cacheSize) break;
      if (at >= now - 2 * this.#skewMs) this.evicted++;
      this.#seen.delete(id);
    }
  }

  #drop(reason: VerifyDropReason): null {
    this.dropped[reason]++;
    return null;
  }
}

/** Sends and receives datagrams; an interface so tests can wrap it and drop packets. */
export interface PacketTransport {
  /** The address we are reachable at (the bound port when 0 was asked for). */
  readonly addr: Addr;
  /**
   * Send one datagram; failures are counted, never thrown.
   *
   * @param to where
   * @param bytes the datagram
   */
  send(to: Addr, bytes: Uint8Array): void;
  /**
   * Set the receiver of every datagram.
   *
   * @param fn called with the bytes and the sender's address
   */
  listen(fn: (bytes: Uint8Array, from: Addr) => void): void;
  /** Stop and release the socket. */
  close(): Promise<void>;
  /** Datagrams refused before they were read (an `admit` hook said no), if it filters. */
  readonly foreign?: number;
}

/** Largest datagram received whole; longer ones are truncated and then fail their MAC. */
const RECEIVE_BYTES = 65_536;

/**
 * A {@linkcode PacketTransport} over a UDP socket from `Deno.listenDatagram` (needs
 * `--unstable-net`). It replaced a node:dgram socket: an idle member sends and receives
 * a few datagrams a second, and each one through node:dgram's layers (events, Buffers,
 * async hooks) cost several times the runtime's own API, code that idle never warms.
 */
export class UdpTransport implements PacketTransport {
  #conn: Deno.DatagramConn;
  #addr: Addr;
  #closed: Promise<void> | undefined;
  #inflight = 0;
  #drained: (() => void) | undefined;
  #fn: ((bytes: Uint8Array, from: Addr) => void) | undefined;
  #loop: Promise<void> | undefined;
  #admit: AdmitFn | undefined;
  /** Sends that failed (unresolvable host, socket errors). */
  sendErrors = 0;
  /** Datagrams the `admit` hook refused, dropped unread. */
  foreign = 0;
  /** Datagrams whose receiver threw (a bug; the datagram is lost, the loop goes on). */
  receiveErrors = 0;

  /**
   * Bind a UDP socket.
   *
   * @param addr host and port to bind (port 0 picks a free one)
   * @param options an `admit` hook that filters senders before anything is read
   * @returns the transport, listening
   * @throws {CircuitError} `busy` when the port is in use, `bad request` otherwise
   */
  static bind(addr: Addr, options: UdpTransportOptions = {}): Promise<UdpTransport> {
    let conn: Deno.DatagramConn;
    try {
      conn = Deno.listenDatagram({ transport: "udp", hostname: addr.host, port: addr.port });
    } catch (err) {
      const inUse = err instanceof Deno.errors.AddrInUse;
      return Promise.reject(
        new CircuitError(
          inUse ? "busy" : "bad request",
          `Binding membership UDP socket failed: cannot bind "${addrKey(addr)}": ${
            (err as Error).message
          }`,
          { cause: err },
        ),
      );
    }
    const port = (conn.addr as Deno.NetAddr).port;
    return Promise.resolve(new UdpTransport(conn, { host: addr.host, port }, options.admit));
  }

  private constructor(conn: Deno.DatagramConn, addr: Addr, admit: AdmitFn | undefined) {
    this.#conn = conn;
    this.#addr = addr;
    this.#admit = admit;
  }

  /** The bound address. */
  get addr(): Addr {
    return this.#addr;
  }

  /**
   * Send one datagram; failures are counted in `sendErrors`.
   *
   * @param to where
   * @param bytes the datagram
   */
  send(to: Addr, bytes: Uint8Array): void {
    if (this.#closed) return;
    this.#inflight++;
    this.#conn.send(bytes, { transport: "udp", hostname: to.host, port: to.port }).then(
      () => {},
      () => this.sendErrors++,
    ).finally(() => {
      if (--this.#inflight === 0) this.#drained?.();
    });
  }

  /**
   * Set the receiver of every datagram (replacing any earlier one).
   *
   * @param fn called with the bytes and the sender's address
   */
  listen(fn: (bytes: Uint8Array, from: Addr) => void): void {
    this.#fn = fn;
    this.#loop ??= this.#receive();
  }

  async #receive(): Promise<void> {
    const buf = new Uint8Array(RECEIVE_BYTES);
    while (!this.#closed) {
      let got: [Uint8Array, Deno.Addr];
      try {
        got = await this.#conn.receive(buf);
      } catch {
        if (this.#closed) return;
        continue; // a transient error (an ICMP report of an earlier send): keep serving
      }
      const from = got[1] as Deno.NetAddr;
      if (this.#admit) {
        const ok = this.#admitted(from);
        if (!(ok === true || (ok !== false && await ok))) {
          this.foreign++;
          continue;
        }
      }
      // A copy: what the receiver keeps must not change under it with the next datagram.
      try {
        this.#fn?.(got[0].slice(), { host: from.hostname, port: from.port });
      } catch {
        // A receiver that throws must not end the loop: the member would go deaf for good.
        this.receiveErrors++;
      }
    }
  }

  /** Ask the hook about a sender (no await when it answers at once); a throw refuses. */
  #admitted(from: Deno.NetAddr): boolean | Promise<boolean> {
    try {
      const ok = this.#admit!({ hostname: from.hostname, port: from.port });
      if (typeof ok === "boolean") return ok;
      return Promise.resolve(ok).then((v) => v === true, () => false);
    } catch {
      return false;
    }
  }

  /** Let sends already handed over leave (a `left` just before stopping), then close. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      if (this.#inflight > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, CLOSE_DRAIN_MS);
          this.#drained = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      try {
        this.#conn.close();
      } catch { /* already closed */ }
      await this.#loop;
    })();
    return this.#closed;
  }
}
