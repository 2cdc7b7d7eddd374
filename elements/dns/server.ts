/**
 * The sockets of a DNS element: UDP and TCP on one address and port. Every message is
 * handed to a pure `handle` function; nothing a peer sends can throw out of here.
 *
 * Bounds: UDP replies waiting to be sent (past the bound, replies are dropped and the
 * client retries); TCP connections served at once (past it, new ones are closed); a TCP
 * connection idle too long is closed. UDP uses `Deno.listenDatagram` (unstable `net`, on
 * in deno.json): measured beside `node:dgram` with dnsperf here, it answers about 15 %
 * more queries per second and its p99 at a steady 2000 q/s is several times lower.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { CircuitError } from "../../net/errors.ts";

const log = getLogger(["circuit", "dns"]);

/** UDP replies handed to the socket and not yet sent; past this, replies are dropped. */
export const MAX_UDP_SENDS_IN_FLIGHT = 1024;

/** Turns one message into its reply (null: send nothing). Must not throw. */
export type Handle = (bytes: Uint8Array, transport: "udp" | "tcp") => Uint8Array | null;

/** Options of {@linkcode DnsServer.listen}. */
export interface ListenOptions {
  /** Address to bind: `0.0.0.0`, `::`, or one address. */
  hostname: string;
  /** Port; 0 picks one that is free for both UDP and TCP. */
  port: number;
  /** Answers messages. */
  handle: Handle;
  /** TCP connections served at once. */
  maxTcpConnections: number;
  /** A TCP connection idle this long is closed, in ms. */
  tcpIdleMs: number;
  /** Tries at a shared free port when `port` is 0. */
  bindAttempts: number;
}

/**
 * Format an address for display and dialing.
 *
 * @param host an IPv4 or IPv6 address
 * @param port the port
 * @returns `1.2.3.4:53` or `[::1]:53`
 */
export function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function bindUdp(hostname: string, port: number): Deno.DatagramConn {
  return Deno.listenDatagram({ transport: "udp", hostname, port });
}

function closeUdp(sock: Deno.DatagramConn): void {
  try {
    sock.close();
  } catch { /* already closed */ }
}

function bindError(hostname: string, port: number, err: unknown): CircuitError {
  const code = (err as { code?: string })?.code;
  const why = err instanceof Deno.errors.AddrInUse || code === "EADDRINUSE"
    ? "address already in use"
    : err instanceof Deno.errors.PermissionDenied || code === "EACCES"
    ? "permission denied"
    : (err as Error)?.message ?? String(err);
  return new CircuitError(
    "bad request",
    `Binding DNS on ${formatAddress(hostname, port)} failed: ${why}`,
    { cause: err },
  );
}

/** A UDP socket and a TCP listener on the same port. */
export class DnsServer {
  /** The bound address. */
  readonly hostname: string;
  /** The bound port. */
  readonly port: number;
  #udp: Deno.DatagramConn;
  #tcp: Deno.TcpListener;
  #o: ListenOptions;
  #conns = new Set<Deno.TcpConn>();
  #tasks = new Set<Promise<void>>();
  #sending = 0;
  #closed: Promise<void> | null = null;

  private constructor(udp: Deno.DatagramConn, tcp: Deno.TcpListener, o: ListenOptions) {
    this.#udp = udp;
    this.#tcp = tcp;
    this.#o = o;
    this.hostname = o.hostname;
    this.port = tcp.addr.port;
    this.#track(this.#receive());
    this.#track(this.#accept());
  }

  /**
   * Bind UDP and TCP on one port.
   *
   * @param o address, handler, bounds
   * @returns the running server
   * @throws {CircuitError} `bad request` when the address cannot be bound
   */
  static listen(o: ListenOptions): Promise<DnsServer> {
    return new Promise((resolve) => resolve(DnsServer.#bind(o)));
  }

  static #bind(o: ListenOptions): DnsServer {
    const attempts = o.port === 0 ? o.bindAttempts : 1;
    let last: unknown;
    for (let i = 0; i < attempts; i++) {
      let udp: Deno.DatagramConn;
      try {
        udp = bindUdp(o.hostname, o.port);
      } catch (err) {
        throw bindError(o.hostname, o.port, err);
      }
      const port = (udp.addr as Deno.NetAddr).port;
      try {
        const tcp = Deno.listen({ hostname: o.hostname, port, transport: "tcp" });
        return new DnsServer(udp, tcp, o);
      } catch (err) {
        closeUdp(udp);
        last = err;
        // A port free for UDP but taken for TCP: with port 0, try another.
        if (!(err instanceof Deno.errors.AddrInUse)) break;
      }
    }
    throw bindError(o.hostname, o.port, last);
  }

  /** Stop serving: both sockets and every TCP connection are closed once this resolves. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      try {
        this.#tcp.close();
      } catch { /* closed */ }
      for (const c of this.#conns) closeConn(c);
      closeUdp(this.#udp);
      await Promise.all([...this.#tasks]);
    })();
    return this.#closed;
  }

  #track(p: Promise<void>): void {
    const t = p.catch(() => {}).finally(() => this.#tasks.delete(t));
    this.#tasks.add(t);
  }

  /** Datagrams, answered one at a time as they come (the handler is synchronous). */
  async #receive(): Promise<void> {
    // One buffer for every datagram: the handler is done with a query before the next.
    const buf = new Uint8Array(65536);
    let failures = 0;
    for (;;) {
      let msg: Uint8Array, from: Deno.Addr;
      try {
        [msg, from] = await this.#udp.receive(buf);
        failures = 0;
      } catch (err) {
        if (this.#closed) return;
        // A transient error (e.g. an ICMP report) must not stop serving; a persistent one
        // must not spin.
        if (++failures === 1 || failures % 100 === 0) {
          log.warn("DNS UDP receive failed: {error}", { error: String(err) });
        }
        if (failures > 10) await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (this.#closed) return;
      this.#onDatagram(msg, from);
    }
  }

  #onDatagram(msg: Uint8Array, from: Deno.Addr): void {
    let reply: Uint8Array | null = null;
    try {
      reply = this.#o.handle(msg, "udp");
    } catch (err) {
      log.warn("DNS query handling failed: {error}", { error: String(err) });
    }
    if (!reply) return;
    if (this.#sending >= MAX_UDP_SENDS_IN_FLIGHT) {
      log.debug("DNS UDP reply dropped: {n} replies already waiting", { n: this.#sending });
      return;
    }
    this.#sending++;
    this.#udp.send(reply, from).catch(() => {}).finally(() => this.#sending--);
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#tcp.accept();
      } catch (err) {
        if (this.#closed) return;
        // Transient accept failures (e.g. too many open files) must not stop serving.
        log.warn("DNS TCP accept failed: {error}", { error: String(err) });
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (this.#closed || this.#conns.size >= this.#o.maxTcpConnections) {
        closeConn(conn);
        continue;
      }
      this.#conns.add(conn);
      this.#track(this.#serveConn(conn));
    }
  }

  /** Length-prefixed messages (RFC 1035 §4.2.2), answered in order. */
  async #serveConn(conn: Deno.TcpConn): Promise<void> {
    let pending: Uint8Array = new Uint8Array(0);
    const chunk = new Uint8Array(16 * 1024);
    let idle = setTimeout(() => closeConn(conn), this.#o.tcpIdleMs);
    try {
      for (;;) {
        const n = await conn.read(chunk);
        if (n === null) return;
        clearTimeout(idle);
        idle = setTimeout(() => closeConn(conn), this.#o.tcpIdleMs);
        pending = concat(pending, chunk.subarray(0, n));
        while (pending.length >= 2) {
          const len = (pending[0] << 8) | pending[1];
          if (pending.length < 2 + len) break;
          const msg = pending.slice(2, 2 + len);
          pending = pending.slice(2 + len);
          let reply: Uint8Array | null = null;
          try {
            reply = this.#o.handle(msg, "tcp");
          } catch (err) {
            log.warn("DNS query handling failed: {error}", { error: String(err) });
          }
          if (reply) await writeAll(conn, frame(reply));
        }
      }
    } catch {
      // The peer went away or sent nonsense: this connection ends, nothing else.
    } finally {
      clearTimeout(idle);
      this.#conns.delete(conn);
      closeConn(conn);
    }
  }
}

function closeConn(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* closed */ }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b.slice();
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function frame(reply: Uint8Array): Uint8Array {
  const out = new Uint8Array(reply.length + 2);
  out[0] = reply.length >> 8;
  out[1] = reply.length & 0xff;
  out.set(reply, 2);
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}
