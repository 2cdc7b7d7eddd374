/**
 * The owner of one TCP socket, asked of the kernel by its exact addresses: a
 * `NETLINK_SOCK_DIAG` query (`inet_diag_req_v2`), made through libc with FFI. It is a hash
 * lookup in the kernel, a few microseconds however many sockets the host has, where a read
 * of `/proc/net/tcp` prints and parses every one of them.
 *
 * Linux only, and only with FFI permission; {@linkcode SockDiag.open} returns null
 * otherwise, and callers read the tables instead.
 *
 * ```ts ignore
 * import { sockDiag } from "./sock_diag.ts";
 * const diag = sockDiag();
 * const answer = diag?.query({
 *   addr: new Uint8Array([127, 0, 0, 1]),
 *   port: 40000,
 *   peer: new Uint8Array([127, 0, 0, 1]),
 *   peerPort: 8080,
 * });
 * ```
 *
 * @module
 */

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** TCP state `ESTABLISHED` (`TCP_ESTABLISHED` in the kernel). */
const TCP_STATE_ESTABLISHED = 1;

/** A TCP connection as seen from its far end: the far socket's address and its peer's. */
export interface FarSocket {
  /** The far socket's own address (our remote): 4 bytes for IPv4 and IPv4-mapped, else 16. */
  addr: Uint8Array;
  /** The far socket's own port. */
  port: number;
  /** The far socket's peer address (our local), as long as `addr`. */
  peer: Uint8Array;
  /** The far socket's peer port. */
  peerPort: number;
}

// The kernel's socket diagnostics (linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h).
const AF_INET = 2, AF_INET6 = 10, AF_NETLINK = 16, IPPROTO_TCP = 6;
const SOCK_DGRAM = 2, SOCK_CLOEXEC = 0o2000000, NETLINK_SOCK_DIAG = 4, MSG_DONTWAIT = 0x40;
const NLMSG_ERROR = 2, SOCK_DIAG_BY_FAMILY = 20, NLM_F_REQUEST = 1, ENOENT = 2;
/** `struct nlmsghdr` (16 bytes) and `struct inet_diag_req_v2` (56). */
const DIAG_REQUEST_BYTES = 72;
/** `struct nlmsghdr` and `struct inet_diag_msg` (72 bytes); attributes may follow. */
const DIAG_REPLY_MIN_BYTES = 88;
/** Replies of other sequence numbers (earlier queries') skipped before giving up. */
const DIAG_STALE_REPLIES_MAX = 8;
const LIBC = ["libc.so.6", "libc.so"];
const LIBC_SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
} as const;

/** A kernel answer: the owner of an established socket, or why there is none. */
export type DiagAnswer = number | "absent" | "not established" | "error";

/**
 * Owner lookups of one TCP socket by its exact addresses, through a `NETLINK_SOCK_DIAG`
 * socket opened with libc through FFI: a hash lookup in the kernel, a few microseconds
 * whatever the number of sockets. The kernel answers before `sendto` returns, so both
 * calls are made without blocking.
 */
export class SockDiag {
  #lib: Deno.DynamicLibrary<typeof LIBC_SYMBOLS>;
  #fd: number;
  #seq = 0;
  #request = new Uint8Array(DIAG_REQUEST_BYTES);
  #reply = new Uint8Array(4096);
  #kernel = new Uint8Array(12); // struct sockaddr_nl: AF_NETLINK, port 0 (the kernel)

  private constructor(lib: Deno.DynamicLibrary<typeof LIBC_SYMBOLS>, fd: number) {
    this.#lib = lib;
    this.#fd = fd;
    new DataView(this.#kernel.buffer).setUint16(0, AF_NETLINK, LITTLE_ENDIAN);
  }

  /**
   * A socket for queries, or null off Linux, without FFI permission, or when it fails.
   * Use {@linkcode sockDiag}: one per process, opened when this module loads.
   */
  static open(): SockDiag | null {
    try {
      if (Deno.build.os !== "linux") return null;
      if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
      for (const name of LIBC) {
        let lib: Deno.DynamicLibrary<typeof LIBC_SYMBOLS>;
        try {
          lib = Deno.dlopen(name, LIBC_SYMBOLS);
        } catch {
          continue;
        }
        const fd = lib.symbols.socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (fd >= 0) return new SockDiag(lib, fd);
        lib.close();
        return null;
      }
    } catch {
      // No permission API, or FFI refused: the tables will do.
    }
    return null;
  }

  /** The kernel's answer about the socket with exactly `far`'s addresses. */
  query(far: FarSocket): DiagAnswer {
    const q = this.#request, v = new DataView(q.buffer);
    const seq = this.#seq = (this.#seq + 1) >>> 0;
    q.fill(0);
    v.setUint32(0, DIAG_REQUEST_BYTES, LITTLE_ENDIAN);
    v.setUint16(4, SOCK_DIAG_BY_FAMILY, LITTLE_ENDIAN);
    v.setUint16(6, NLM_F_REQUEST, LITTLE_ENDIAN);
    v.setUint32(8, seq, LITTLE_ENDIAN);
    q[16] = far.addr.length === 4 ? AF_INET : AF_INET6;
    q[17] = IPPROTO_TCP;
    v.setUint32(20, 0xffffffff, LITTLE_ENDIAN); // every state: the answer's is checked
    v.setUint16(24, far.port); // ports and addresses in network order
    v.setUint16(26, far.peerPort);
    q.set(far.addr, 28);
    q.set(far.peer, 44);
    v.setUint32(64, 0xffffffff); // INET_DIAG_NOCOOKIE
    v.setUint32(68, 0xffffffff);
    const { sendto, recv } = this.#lib.symbols;
    const sent = sendto(this.#fd, q, BigInt(q.length), 0, this.#kernel, this.#kernel.length);
    if (Number(sent) !== q.length) return "error";
    const r = new DataView(this.#reply.buffer);
    for (let i = 0; i < DIAG_STALE_REPLIES_MAX; i++) {
      const n = Number(recv(this.#fd, this.#reply, BigInt(this.#reply.length), MSG_DONTWAIT));
      if (n < 20) return "error";
      if (r.getUint32(8, LITTLE_ENDIAN) !== seq) continue;
      const type = r.getUint16(4, LITTLE_ENDIAN);
      if (type === NLMSG_ERROR) {
        return r.getInt32(16, LITTLE_ENDIAN) === -ENOENT ? "absent" : "error";
      }
      if (type !== SOCK_DIAG_BY_FAMILY || n < DIAG_REPLY_MIN_BYTES) return "error";
      if (r.getUint16(20) !== far.port || r.getUint16(22) !== far.peerPort) return "error";
      return this.#reply[17] === TCP_STATE_ESTABLISHED
        ? r.getUint32(80, LITTLE_ENDIAN)
        : "not established";
    }
    return "error";
  }
}

/**
 * This process's socket for kernel queries. It is opened when the module loads, once, and
 * stays open: a library loaded while a test runs would count as a leak, and a keyless
 * server asks on every loopback handshake.
 */
const shared = SockDiag.open();

/**
 * The process's socket for kernel queries.
 *
 * @returns it, or null where the kernel cannot be asked (see {@linkcode SockDiag.open})
 */
export function sockDiag(): SockDiag | null {
  return shared;
}
