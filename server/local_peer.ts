/**
 * Who is on the other end of a loopback socket: the local user that owns it. A TCP peer's
 * socket is asked of the kernel by its exact addresses (netlink `sock_diag`, see
 * `sock_diag.ts`: microseconds), or found in the socket tables (`/proc/net/tcp`, `tcp6`:
 * milliseconds per read with thousands of sockets, so reads are shared by every waiting
 * lookup); a UDP sender's in `/proc/net/udp` and `udp6`.
 *
 * A keyless server has no secret to check, and loopback does not separate users, so it
 * admits a loopback peer only when the peer's socket belongs to the server's own user or
 * to root. A loopback client is always in the server's network namespace (loopback does
 * not leave it), so its socket is in the tables this process reads.
 *
 * Linux only: elsewhere the owner is unknown and a keyless server refuses every loopback
 * peer (use a key).
 *
 * @module
 */

import {
  TCP_LOOKUP_ATTEMPTS,
  TCP_LOOKUP_DEADLINE_MS,
  TCP_LOOKUP_RETRY_MS,
  TCP_TABLE_MIN_REFRESH_MS,
  UDP_TABLE_MIN_REFRESH_MS,
  UDP_TABLE_TTL_MS,
} from "./config.ts";
import { type DiagAnswer, type FarSocket, type SockDiag, sockDiag } from "./sock_diag.ts";

/** TCP state `ESTABLISHED` as `/proc/net/tcp` prints it. */
const TCP_ESTABLISHED = "01";

/** A socket address: an IP (text, as Deno writes it) and a port. */
export interface SockAddr {
  /** IPv4 or IPv6 address. */
  hostname: string;
  /** Port. */
  port: number;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** The first 12 bytes of an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`). */
const V4_MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/** An IPv4-mapped IPv6 address as its 4 IPv4 bytes; other addresses as they are. */
function unmapped(bytes: Uint8Array): Uint8Array {
  const mapped = bytes.length === 16 && V4_MAPPED_PREFIX.every((b, i) => bytes[i] === b);
  return mapped ? bytes.subarray(12) : bytes;
}

/**
 * Canonical text of an IP for comparisons: dotted IPv4 for IPv4 and IPv4-mapped IPv6,
 * 32 hex digits for other IPv6.
 */
function canonicalBytes(bytes: Uint8Array): string {
  const b = unmapped(bytes);
  if (b.length === 4) return [...b].join(".");
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * Parse an IPv4 or IPv6 address as Deno prints it.
 *
 * @param text the address (an IPv6 zone, `%eth0`, is ignored)
 * @returns its bytes, or null when it is not an IP address
 */
export function parseIp(text: string): Uint8Array | null {
  const t = text.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(t);
  if (v4) {
    const b = v4.slice(1).map(Number);
    return b.every((x) => x <= 255) ? new Uint8Array(b) : null;
  }
  if (!t.includes(":")) return null;
  let head = t, tail = "";
  const dbl = t.indexOf("::");
  if (dbl >= 0) {
    head = t.slice(0, dbl);
    tail = t.slice(dbl + 2);
    if (tail.includes("::")) return null;
  }
  const words = (s: string): number[] | null => {
    if (s === "") return [];
    const out: number[] = [];
    const parts = s.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (i === parts.length - 1 && p.includes(".")) {
        const four = parseIp(p);
        if (!four || four.length !== 4) return null;
        out.push((four[0] << 8) | four[1], (four[2] << 8) | four[3]);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) {
        out.push(parseInt(p, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  const h = words(head), tl = words(tail);
  if (!h || !tl) return null;
  const fill = 8 - h.length - tl.length;
  if (dbl >= 0 ? fill < 1 : fill !== 0) return null;
  const all = [...h, ...new Array(dbl >= 0 ? fill : 0).fill(0), ...tl];
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

/**
 * Whether an address is loopback: `127.0.0.0/8`, `::1`, or IPv4-mapped `127.x`.
 *
 * @param hostname an IP address as text
 * @returns true for loopback
 */
export function isLoopbackIp(hostname: string): boolean {
  const b = parseIp(hostname);
  if (!b) return false;
  const c = canonicalBytes(b);
  return c.startsWith("127.") || c === "0".repeat(31) + "1";
}

function keyOf(addr: SockAddr): string | null {
  const b = parseIp(addr.hostname);
  return b ? `${canonicalBytes(b)}/${addr.port}` : null;
}

/** Decode a `/proc/net` address (`0100007F:1F90`) to the same key as {@linkcode keyOf}. */
function procKey(field: string): string | null {
  const colon = field.indexOf(":");
  if (colon < 0) return null;
  const hex = field.slice(0, colon);
  const port = parseInt(field.slice(colon + 1), 16);
  if ((hex.length !== 8 && hex.length !== 32) || !/^[0-9A-Fa-f]+$/.test(hex)) return null;
  // The kernel prints each 32-bit word of the address in host byte order.
  const bytes = new Uint8Array(hex.length / 2);
  for (let w = 0; w < hex.length / 8; w++) {
    const word = parseInt(hex.slice(w * 8, w * 8 + 8), 16);
    for (let i = 0; i < 4; i++) {
      const shift = LITTLE_ENDIAN ? 8 * i : 8 * (3 - i);
      bytes[w * 4 + i] = (word >>> shift) & 0xff;
    }
  }
  return `${canonicalBytes(bytes)}/${port}`;
}

/** One line of a `/proc/net/{tcp,udp}{,6}` table. */
interface ProcSocket {
  local: string;
  remote: string;
  state: string;
  uid: number;
}

/**
 * Parse a `/proc/net/tcp`-style table.
 *
 * @param text the file's text
 * @returns its sockets (lines that do not parse are left out)
 */
function parseTable(text: string): ProcSocket[] {
  const out: ProcSocket[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const local = procKey(f[1]), remote = procKey(f[2]);
    const uid = Number(f[7]);
    if (!local || !remote || !Number.isInteger(uid)) continue;
    out.push({ local, remote, state: f[3], uid });
  }
  return out;
}

async function readTables(names: string[]): Promise<ProcSocket[]> {
  const texts = await Promise.all(
    names.map((n) => Deno.readTextFile(`/proc/net/${n}`).catch(() => "")),
  );
  return texts.flatMap(parseTable);
}

function farSocket(conn: { remote: SockAddr; local: SockAddr }): FarSocket | null {
  const a = parseIp(conn.remote.hostname), p = parseIp(conn.local.hostname);
  if (!a || !p) return null;
  const addr = unmapped(a), peer = unmapped(p);
  if (addr.length !== peer.length) return null;
  return { addr, port: conn.remote.port, peer, peerPort: conn.local.port };
}

/** An address as `/proc/net/tcp` prints it: each 32-bit word in host order, `:PORT` in hex. */
function procAddr(bytes: Uint8Array, port: number): string {
  let out = "";
  for (let w = 0; w < bytes.length; w += 4) {
    const [b0, b1, b2, b3] = bytes.subarray(w, w + 4);
    const word = LITTLE_ENDIAN
      ? b0 | b1 << 8 | b2 << 16 | b3 << 24
      : b0 << 24 | b1 << 16 | b2 << 8 | b3;
    out += (word >>> 0).toString(16).padStart(8, "0");
  }
  return `${out}:${port.toString(16).padStart(4, "0")}`.toUpperCase();
}

/** The keys (`LOCAL REMOTE`, as printed) the far socket can have in `tcp` or `tcp6`. */
function procKeys(far: FarSocket): string[] {
  const key = (a: Uint8Array, p: Uint8Array) =>
    `${procAddr(a, far.port)} ${procAddr(p, far.peerPort)}`;
  if (far.addr.length === 16) return [key(far.addr, far.peer)];
  const mapped = (b: Uint8Array) => new Uint8Array([...V4_MAPPED_PREFIX, ...b]);
  return [key(far.addr, far.peer), key(mapped(far.addr), mapped(far.peer))];
}

/**
 * The owners of the established sockets in a `/proc/net/tcp`-style table, by their
 * printed `LOCAL REMOTE` addresses (nothing else is decoded, so a read of thousands of
 * sockets stays cheap).
 */
function addEstablished(text: string, into: Map<string, number>): void {
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/, 8);
    if (f.length < 8 || f[3] !== TCP_ESTABLISHED) continue;
    const uid = Number(f[7]);
    if (Number.isInteger(uid)) into.set(`${f[1]} ${f[2]}`, uid);
  }
}

async function readEstablished(): Promise<Map<string, number>> {
  const texts = await Promise.all(
    ["tcp", "tcp6"].map((n) => Deno.readTextFile(`/proc/net/${n}`).catch(() => "")),
  );
  const owners = new Map<string, number>();
  for (const t of texts) addEstablished(t, owners);
  return owners;
}

/**
 * Reads of `/proc/net/tcp` and `tcp6`, shared: every lookup waiting when a read starts gets
 * its answer, at most one read runs at a time, and a read starts at least
 * {@linkcode TCP_TABLE_MIN_REFRESH_MS} after the previous one. A lookup only ever gets a
 * read that started after it asked, so an answer is never about an earlier connection that
 * had the same addresses (ports are reused).
 */
class TcpTableReads {
  /** Reads made. */
  count = 0;
  #next: PromiseWithResolvers<Map<string, number>> | null = null;
  #running = false;
  #lastStart = -Infinity;

  /** The owners of the established sockets, from a read that starts after this call. */
  fresh(): Promise<Map<string, number>> {
    this.#next ??= Promise.withResolvers();
    const answer = this.#next.promise;
    if (!this.#running) void this.#run();
    return answer;
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      while (this.#next) {
        const wait = this.#lastStart + TCP_TABLE_MIN_REFRESH_MS - performance.now();
        if (wait > 0) await sleep(wait);
        const waiting = this.#next;
        this.#next = null;
        this.#lastStart = performance.now();
        this.count++;
        waiting.resolve(await readEstablished().catch(() => new Map()));
      }
    } finally {
      this.#running = false;
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Counters of a {@linkcode TcpOwners}, for tests and measurements. */
export interface TcpOwnerStats {
  /** Lookups asked for. */
  lookups: number;
  /** Reads of `/proc/net/tcp` and `tcp6` (a read of both counts once). */
  reads: number;
  /** Kernel queries (netlink `sock_diag`), one per try. */
  queries: number;
  /** Whether lookups ask the kernel (else they read the tables). */
  sockDiag: boolean;
}

/** Options of a {@linkcode TcpOwners}. */
export interface TcpOwnersOptions {
  /**
   * Ask the kernel first (netlink `sock_diag` through FFI; Linux, with FFI permission),
   * reading the tables only when it has no answer. False reads the tables only.
   *
   * @default {true}
   */
  sockDiag?: boolean;
}

/**
 * Owners of the far ends of local TCP connections. Each lookup asks the kernel for the
 * socket with exactly the connection's addresses; where that is not available (or finds
 * nothing), it waits for a shared read of `/proc/net/tcp` and `tcp6` that starts after it
 * asked. Nothing is cached beyond the read a lookup waited for: an answer is always about
 * a socket that existed while the connection did. A socket that is missing or not yet
 * established is tried again, up to {@linkcode TCP_LOOKUP_ATTEMPTS} times within
 * {@linkcode TCP_LOOKUP_DEADLINE_MS}.
 */
export class TcpOwners {
  #lookups = 0;
  #queries = 0;
  #reads = new TcpTableReads();
  #diag: SockDiag | null;

  /** @param options whether to ask the kernel first */
  constructor(options: TcpOwnersOptions = {}) {
    this.#diag = options.sockDiag === false ? null : sockDiag();
  }

  /** What lookups have cost so far. */
  get stats(): TcpOwnerStats {
    return {
      lookups: this.#lookups,
      reads: this.#reads.count,
      queries: this.#queries,
      sockDiag: this.#diag !== null,
    };
  }

  /**
   * The local user owning the far end of a TCP connection on this host: the established
   * socket whose own address is our remote address and whose peer is our local address.
   *
   * @param conn our socket's two addresses
   * @returns the owner's uid, or null when no such socket is in this namespace
   */
  async owner(conn: { remote: SockAddr; local: SockAddr }): Promise<number | null> {
    this.#lookups++;
    const far = farSocket(conn);
    if (!far) return null;
    const deadline = performance.now() + TCP_LOOKUP_DEADLINE_MS;
    if (!this.#diag) return await this.#fromTables(far, deadline, TCP_LOOKUP_ATTEMPTS);
    const answer = await this.#fromKernel(this.#diag, far, deadline);
    if (typeof answer === "number") return answer;
    // A failed query leaves every try to the tables; a socket the kernel did not find
    // established in every try gets one look there (the kernel may not list TCP sockets).
    const tries = answer === "error" ? TCP_LOOKUP_ATTEMPTS : 1;
    const uid = await this.#fromTables(far, deadline, tries);
    // The tables have a socket the kernel said it had not: stop asking the kernel.
    if (uid !== null && answer === "absent") this.#diag = null;
    return uid;
  }

  async #fromKernel(diag: SockDiag, far: FarSocket, deadline: number): Promise<DiagAnswer> {
    for (let attempt = 1;; attempt++) {
      this.#queries++;
      const answer = diag.query(far);
      if (typeof answer === "number" || answer === "error") return answer;
      if (attempt >= TCP_LOOKUP_ATTEMPTS) return answer;
      if (performance.now() + TCP_LOOKUP_RETRY_MS > deadline) return answer;
      await sleep(TCP_LOOKUP_RETRY_MS);
    }
  }

  async #fromTables(far: FarSocket, deadline: number, attempts: number): Promise<number | null> {
    const keys = procKeys(far);
    for (let attempt = 1;; attempt++) {
      const owners = await this.#reads.fresh();
      for (const k of keys) {
        const uid = owners.get(k);
        if (uid !== undefined) return uid;
      }
      if (attempt >= attempts || performance.now() >= deadline) return null;
    }
  }
}

/** The lookups of this process's keyless server. */
const tcpOwners = new TcpOwners();

/**
 * The local user owning the far end of a TCP connection on this host (see
 * {@linkcode TcpOwners}).
 *
 * @param conn our socket's two addresses
 * @returns the owner's uid, or null when no such socket is in this namespace
 */
export function tcpPeerUid(conn: { remote: SockAddr; local: SockAddr }): Promise<number | null> {
  return tcpOwners.owner(conn);
}

/**
 * What this process's TCP owner lookups (those of {@linkcode tcpPeerUid},
 * {@linkcode admitLocalPeer} and {@linkcode admitLocalListener}) have cost so far.
 *
 * @returns the counters
 */
export function tcpPeerStats(): TcpOwnerStats {
  return tcpOwners.stats;
}

/** Whether `uid` may use a keyless server run by `self`: the same user, or root. */
export function sameLocalUser(uid: number | null, self: number | null): boolean {
  return uid !== null && (uid === 0 || uid === self);
}

/** The one-sentence refusal a different local user gets from a keyless server. */
export function otherUserMessage(self: number | null): string {
  return `Handshake failed: this keyless server accepts only its own user (uid ${self}); use a key (--hmac)`;
}

/**
 * Admission of a TCP peer by a keyless server: loopback peers must be the server's own
 * user or root; non-loopback peers (which reach a keyless server only under `--insecure`)
 * are let through.
 *
 * @param conn the connection's addresses
 * @returns null to admit, or the `auth` refusal
 */
export async function admitLocalPeer(
  conn: { remote: SockAddr; local: SockAddr },
): Promise<{ code: "auth"; message: string } | null> {
  if (!isLoopbackIp(conn.remote.hostname)) return null;
  const self = Deno.uid();
  if (sameLocalUser(await tcpPeerUid(conn), self)) return null;
  return { code: "auth", message: otherUserMessage(self) };
}

/** The one-sentence refusal when a keyless server would dial another local user's socket. */
export function otherUserListenerMessage(uid: number | null, self: number | null): string {
  return uid === null
    ? `its owner cannot be found; this keyless server talks only to its own user (uid ${self})`
    : `it belongs to another local user (uid ${uid}); this keyless server talks only to its own user (uid ${self})`;
}

/**
 * Admission of a TCP peer a keyless server dials: a loopback listener must belong to the
 * server's own user or to root, so another user cannot take over a dead member's port and
 * be served as a peer. Non-loopback peers (only under `--insecure`) are let through.
 *
 * @param conn the connection's addresses
 * @returns null to go on, or the `auth` refusal
 */
export async function admitLocalListener(
  conn: { remote: SockAddr; local: SockAddr },
): Promise<{ code: "auth"; message: string } | null> {
  if (!isLoopbackIp(conn.remote.hostname)) return null;
  const self = Deno.uid();
  const uid = await tcpPeerUid(conn);
  if (sameLocalUser(uid, self)) return null;
  return { code: "auth", message: otherUserListenerMessage(uid, self) };
}

/**
 * Owners of local UDP sockets, for checking where a loopback membership packet came from.
 * One read of `/proc/net/udp` and `udp6` answers lookups for {@linkcode UDP_TABLE_TTL_MS};
 * a miss re-reads it at most every {@linkcode UDP_TABLE_MIN_REFRESH_MS}. Memory is bounded
 * by the host's own UDP socket count (the table is replaced on every read).
 */
export class UdpOwners {
  #table = new Map<string, number[]>();
  #readAt = -Infinity;
  #reading: Promise<void> | null = null;

  /**
   * The uids of the sockets bound to `from` (exactly, or to the wildcard address on its
   * port).
   *
   * @param from a packet's source
   * @returns the owners (empty when unknown)
   */
  async owners(from: SockAddr): Promise<number[]> {
    const key = keyOf(from);
    if (!key) return [];
    const age = performance.now() - this.#readAt;
    if (
      age >= UDP_TABLE_TTL_MS || (!this.#lookup(key, from.port) && age >= UDP_TABLE_MIN_REFRESH_MS)
    ) {
      await this.#refresh();
    }
    return this.#lookup(key, from.port) ?? [];
  }

  /**
   * Whether a packet from `from` may be accepted by a keyless server: non-loopback sources
   * (only under `--insecure`) pass; loopback ones must come from sockets of the server's
   * own user or root.
   *
   * @param from the packet's source
   * @returns whether to accept it
   */
  async admit(from: SockAddr): Promise<boolean> {
    if (!isLoopbackIp(from.hostname)) return true;
    const uids = await this.owners(from);
    const self = Deno.uid();
    return uids.length > 0 && uids.every((u) => sameLocalUser(u, self));
  }

  #lookup(key: string, port: number): number[] | undefined {
    const exact = this.#table.get(key);
    const any = [
      ...(this.#table.get(`0.0.0.0/${port}`) ?? []),
      ...(this.#table.get(`${"0".repeat(32)}/${port}`) ?? []),
    ];
    if (!exact && !any.length) return undefined;
    return [...(exact ?? []), ...any];
  }

  #refresh(): Promise<void> {
    this.#reading ??= (async () => {
      try {
        const table = new Map<string, number[]>();
        for (const s of await readTables(["udp", "udp6"])) {
          const list = table.get(s.local);
          if (list) list.push(s.uid);
          else table.set(s.local, [s.uid]);
        }
        this.#table = table;
        this.#readAt = performance.now();
      } finally {
        this.#reading = null;
      }
    })();
    return this.#reading;
  }
}
