/**
 * Who is on the other end of a loopback socket: the local user that owns it, read from
 * the kernel's socket tables (`/proc/net/tcp`, `tcp6`, `udp`, `udp6`).
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

import { UDP_TABLE_MIN_REFRESH_MS, UDP_TABLE_TTL_MS } from "./config.ts";

/** TCP state `ESTABLISHED` in `/proc/net/tcp`. */
const TCP_ESTABLISHED = "01";

/** A socket address: an IP (text, as Deno writes it) and a port. */
export interface SockAddr {
  /** IPv4 or IPv6 address. */
  hostname: string;
  /** Port. */
  port: number;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Canonical text of an IP for comparisons: dotted IPv4 for IPv4 and IPv4-mapped IPv6,
 * 32 hex digits for other IPv6.
 */
function canonicalBytes(bytes: Uint8Array): string {
  const mapped = bytes.length === 16 && bytes.subarray(0, 10).every((b) => b === 0) &&
    bytes[10] === 0xff && bytes[11] === 0xff;
  if (bytes.length === 4 || mapped) return [...bytes.subarray(bytes.length - 4)].join(".");
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
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

/**
 * The local user owning the far end of a TCP connection on this host: the established
 * socket whose own address is our remote address and whose peer is our local address.
 *
 * @param conn our socket's two addresses
 * @returns the owner's uid, or null when no such socket is in this namespace's tables
 */
export async function tcpPeerUid(
  conn: { remote: SockAddr; local: SockAddr },
): Promise<number | null> {
  const want = keyOf(conn.remote), ours = keyOf(conn.local);
  if (!want || !ours) return null;
  for (const s of await readTables(["tcp", "tcp6"])) {
    if (s.state === TCP_ESTABLISHED && s.local === want && s.remote === ours) return s.uid;
  }
  return null;
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
