/**
 * Membership packets and the UDP socket that carries them.
 *
 * A packet is a compound: several encoded messages piggybacked in one datagram of at most
 * `maxPacketBytes`. Its body is a msgpack map `{v, ts, n, m}`: protocol version, the
 * sender's clock (ms since the epoch), a 12-byte random nonce, and the messages as an
 * array of binaries. With a cluster key the datagram is `mac ‖ body`, where `mac` is the
 * 32-byte HMAC-SHA256 of the label `circuit/1 membership` and the body; forged, stale
 * (outside the skew window) and replayed (nonce seen) packets are dropped and counted,
 * by `net/datagram.ts` (the `prefix` placement), as discovery's are.
 *
 * The codec and the verifier are plain; the socket (node:dgram) is at the edge, behind
 * {@linkcode PacketTransport} so tests can drop packets.
 *
 * @module
 */

import { CircuitError } from "../errors.ts";
import {
  type DatagramDropReason,
  type DatagramFormat,
  DatagramVerifier,
  MAC_BYTES,
  newNonce,
  sealDatagram,
  type StampedBody,
} from "../datagram.ts";
import type { MembershipConfig } from "./config.ts";
import { type Addr, addrKey, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN } from "./messages.ts";

const LABEL = "circuit/1 membership";
const NONCE_BYTES = 12;
/** Upper bound of the body bytes that are not messages: map, version, clock, nonce, array. */
const ENVELOPE_BYTES = 40;
/** How long closing waits for sends still in flight, in ms. */
const CLOSE_DRAIN_MS = 200;

/** Why the verifier dropped a packet. */
export type VerifyDropReason = DatagramDropReason;
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

/** Membership packets: `mac ‖ body`, under their own label. */
const MEMBERSHIP_FORMAT: DatagramFormat<Uint8Array[]> = {
  label: LABEL,
  mac: "prefix",
  read: readCompound,
};

/** A decoded body as its messages, or null when its shape or version is wrong. */
function readCompound(raw: Record<string, unknown>): StampedBody<Uint8Array[]> | null {
  if (
    typeof raw.v !== "number" || raw.v < PROTOCOL_VERSION_MIN || raw.v > PROTOCOL_VERSION_MAX ||
    !Number.isFinite(raw.ts) || !(raw.n instanceof Uint8Array) || raw.n.length !== NONCE_BYTES ||
    !Array.isArray(raw.m) || !raw.m.every((m) => m instanceof Uint8Array)
  ) {
    return null;
  }
  return { value: raw.m as Uint8Array[], ts: raw.ts as number, nonce: raw.n };
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
  const body = { v: PROTOCOL_VERSION_MAX, ts: now, n: newNonce(NONCE_BYTES), m: messages };
  return sealDatagram(MEMBERSHIP_FORMAT, body, key);
}

/** Checks membership packets and remembers nonces; counts what it drops. */
export class PacketVerifier extends DatagramVerifier<Uint8Array[]> {
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
    super(MEMBERSHIP_FORMAT, key, {
      maxSkewMs: config.packetMaxSkewMs,
      nonceCacheSize: config.nonceCacheSize,
    });
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
