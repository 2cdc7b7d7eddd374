/**
 * TCP connections: dial and accept, run the handshake, then carry a {@linkcode Mux}.
 *
 * @module
 */

import { Packr } from "msgpackr/pack";
import { abortError, CircuitError, fromWireError } from "./errors.ts";
import { FrameError, FrameOpener, FrameSealer, LENGTH_BYTES } from "./frame.ts";
import { loadNodeCrypto } from "./node_crypto.ts";
import type { DirectionKeys } from "./frame.ts";
import {
  checkHello,
  deriveKeys,
  newNonce,
  proof,
  proofMatches,
  PROTOCOL_VERSION_MAX,
  PROTOCOL_VERSION_MIN,
} from "./handshake.ts";
import type { Hello, PeerInfo, Role, Target } from "./handshake.ts";
import { type Handler, Mux } from "./mux.ts";
import {
  HANDSHAKE_MAX_FRAME_BYTES,
  HANDSHAKE_TIMEOUT_MS,
  READ_BYTES,
  type TransportConfig,
  transportConfig,
} from "./config.ts";
import { escapeForLog } from "./escape.ts";
import { formatUrl } from "./url.ts";
import type { CircuitUrl } from "./url.ts";

const packr = new Packr({ useRecords: false, moreTypes: false });
/** The most a pending connection reads at once: one whole handshake frame. */
const HANDSHAKE_READ_BYTES = LENGTH_BYTES + HANDSHAKE_MAX_FRAME_BYTES;
/** Why a handshake failed when the other end closed before a whole frame. */
const CLOSED_IN_HANDSHAKE = "Connection closed during the handshake";

/**
 * A handshake broken by bytes that were not part of it: what an on-path attacker who
 * appends to a real handshake causes. Never leaves this module as itself: dial turns it
 * into a CircuitError `auth`, accept logs it.
 */
class HandshakeViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HandshakeViolation";
  }
}

/** A sink for one-line connection events (protocol violations, closes). */
export type ConnLog = (message: string) => void;

/**
 * Framed socket I/O; re-keyed once the handshake derives keys.
 *
 * Until then it is frugal and strict: it reads at most one handshake frame's worth of
 * bytes at a time into a buffer of that size, writes its plain frames without a sealer,
 * and takes each handshake message only when it arrived alone: a frame, or part of one,
 * after it (which an honest peer never sends, as it waits for our answer) fails the
 * handshake. So no byte read before the key change is ever taken as if it came after.
 */
class FrameIO {
  #conn: Deno.Conn;
  #sealer: FrameSealer | undefined;
  #opener: FrameOpener;
  #ready: Uint8Array[] = [];
  #config: TransportConfig;
  #keyed = false;
  #closed = false;

  constructor(conn: Deno.Conn, config: TransportConfig) {
    this.#conn = conn;
    this.#config = config;
    this.#opener = new FrameOpener(undefined, HANDSHAKE_MAX_FRAME_BYTES);
  }

  /**
   * Change to the session's keys (or to plain frames, unkeyed) for everything after.
   *
   * @throws {HandshakeViolation} when any byte is still held from before the change
   */
  rekey(tx: DirectionKeys | undefined, rx: DirectionKeys | undefined): void {
    if (this.#closed) return; // a handshake that timed out: make no ciphers to leak
    const held = this.#opener.pendingBytes + this.#ready.reduce((n, f) => n + f.length, 0);
    if (held > 0) {
      throw new HandshakeViolation(
        `${held} bytes that were not part of the handshake arrived before the key change (tampering on the path?)`,
      );
    }
    this.#sealer?.close();
    this.#opener.close();
    this.#sealer = new FrameSealer(tx, this.#config.epochBytes);
    this.#opener = new FrameOpener(rx, this.#config.maxFrameBytes, this.#config.epochBytes);
    this.#keyed = true;
  }

  /**
   * Seal and write one frame whose body is `parts` joined, `size` bytes. Frames go out one
   * at a time (the handshake's, then the mux writer's), each written before the next is
   * sealed, so a large one may reuse the sealer's buffer.
   */
  async write(parts: Uint8Array[], size: number): Promise<void> {
    const bytes = this.#sealer
      ? this.#sealer.sealParts(parts, size, true)
      : plainFrame(parts, size);
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  /** One frame with a single body (the handshake's messages). */
  writeOne(body: Uint8Array): Promise<void> {
    return this.write([body], body.length);
  }

  /** Frames ready, reading the socket as needed; empty array at clean EOF. */
  async read(): Promise<Uint8Array[]> {
    if (this.#ready.length) return this.#ready.splice(0);
    for (;;) {
      // Straight into the opener's memory: no copy between the socket and the frames.
      const n = await this.#conn.read(this.#opener.space(READ_BYTES));
      if (n === null) {
        this.#opener.end();
        return [];
      }
      const frames = this.#opener.commit(n);
      if (frames.length) return frames;
    }
  }

  /** The first frame after the key change (the welcome); frames after it stay queued. */
  async readOne(): Promise<Uint8Array> {
    if (!this.#ready.length) this.#ready = await this.read();
    const f = this.#ready.shift();
    if (!f) throw new CircuitError("unreachable", CLOSED_IN_HANDSHAKE);
    return f;
  }

  /**
   * One handshake message before the key change: exactly one frame, read at most one
   * frame's worth at a time, with nothing after it.
   *
   * @param what the message, for the error
   * @throws {HandshakeViolation} when bytes follow it
   * @throws {CircuitError} `unreachable` at EOF
   * @throws {FrameError} on an oversized length or a partial frame at EOF
   */
  async readHandshake(what: string): Promise<Uint8Array> {
    if (this.#keyed) throw new Error("readHandshake() after the key change");
    for (;;) {
      const room = HANDSHAKE_READ_BYTES - this.#opener.pendingBytes;
      const n = await this.#conn.read(this.#opener.space(room).subarray(0, room));
      if (n === null) {
        this.#opener.end();
        throw new CircuitError("unreachable", CLOSED_IN_HANDSHAKE);
      }
      const frames = this.#opener.commit(n);
      if (!frames.length) continue;
      if (frames.length > 1 || this.#opener.pendingBytes > 0) {
        throw new HandshakeViolation(
          `unexpected bytes followed the ${what} (tampering on the path?)`,
        );
      }
      return frames[0];
    }
  }

  close(): void {
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    this.#sealer?.close();
    this.#opener.close();
  }
}

/** `length | body` of a plain frame, in memory of its own (handshake frames only). */
function plainFrame(parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(LENGTH_BYTES + size);
  new DataView(out.buffer).setUint32(0, size);
  let at = LENGTH_BYTES;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Who is on the other end of an established connection. */
export interface RemoteInfo {
  /** Client or peer server. */
  role: Role;
  /** `host:port` of the socket's far end. */
  addr: string;
  /** A peer's self-description. */
  peer?: PeerInfo;
}

/** An established, authenticated connection carrying a mux. */
export class Connection {
  /** Calls and streams. */
  readonly mux: Mux;
  /** The far end. */
  readonly remote: RemoteInfo;
  /** Resolves with the reason when the connection has closed. */
  readonly closed: Promise<CircuitError>;
  #io: FrameIO;

  constructor(
    io: FrameIO,
    remote: RemoteInfo,
    parity: 1 | 2,
    config: TransportConfig,
    handler: Handler | undefined,
    log: ConnLog | undefined,
  ) {
    this.#io = io;
    this.remote = remote;
    let onClosed!: (e: CircuitError) => void;
    this.closed = new Promise((r) => (onClosed = r));
    this.mux = new Mux({
      parity,
      handler,
      config,
      peerName: remote.peer ? `X${remote.peer.id}` : remote.addr,
      writeFrame: (parts, size) => io.write(parts, size),
      log,
      onClose: (reason) => {
        io.close();
        onClosed(reason);
      },
    });
    this.#readLoop(log);
  }

  async #readLoop(log: ConnLog | undefined): Promise<void> {
    try {
      for (;;) {
        const frames = await this.#io.read();
        if (frames.length === 0) break;
        for (const f of frames) this.mux.receive(f);
        if (this.mux.isClosed) return;
      }
      this.mux.close(new CircuitError("closed", `${this.remote.addr} closed the connection`));
    } catch (err) {
      if (this.mux.isClosed) return;
      if (err instanceof FrameError) {
        log?.(`closing connection from ${this.remote.addr}: ${err.message}`);
        this.mux.close(new CircuitError("closed", `Protocol violation: ${err.message}`));
      } else {
        this.mux.close(
          new CircuitError("unreachable", `Connection to ${this.remote.addr} lost`, { cause: err }),
        );
      }
    }
  }

  /** Close now. */
  close(): void {
    this.mux.close();
  }
}

/** Options of {@linkcode dial}. */
export interface DialOptions {
  /** The cluster key; absent for an unkeyed (loopback) cluster. */
  key?: Uint8Array;
  /** Client or peer. */
  role: Role;
  /** A peer's own description. */
  from?: PeerInfo;
  /** Serves calls the far end makes on this connection. */
  handler?: Handler;
  /** Aborts the dial. */
  signal?: AbortSignal;
  /** Transport limits and timings. */
  config?: Partial<TransportConfig>;
  /** One-line event log. */
  log?: ConnLog;
  /**
   * Decides, once TCP is connected and before the hello is sent, whether the far end may be
   * talked to (a keyless server checks that a loopback peer's listener is its own user's).
   * Return null to go on, or a refusal, which fails the dial with its code.
   */
  admit?: (info: { remote: Deno.NetAddr; local: Deno.NetAddr; role: Role; keyed: boolean }) =>
    | Promise<{ code: "auth"; message: string } | null>
    | { code: "auth"; message: string }
    | null;
}

function hostOf(u: CircuitUrl): string {
  return u.host;
}

/**
 * Dial a circuit URL and complete the handshake.
 *
 * @param url where, and which incarnation
 * @param options key, role, signal
 * @returns the connection
 * @throws {CircuitError} `unreachable`, `not found` (stale URL), `auth`, `timeout`
 */
export async function dial(url: CircuitUrl, options: DialOptions): Promise<Connection> {
  const config = transportConfig(options.config);
  const where = formatUrl(url);
  const timeout = AbortSignal.timeout(config.dialTimeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  if (signal.aborted) throw abortError(signal, `Dialing ${where}`);
  let conn: Deno.Conn | undefined;
  let io: FrameIO | undefined;
  const onAbort = () => io?.close();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    // A keyed dial needs node:crypto; load it while the connection is being made.
    const cryptoReady = options.key ? loadNodeCrypto() : undefined;
    conn = await Deno.connect(
      { hostname: hostOf(url), port: url.port, signal } as Deno.ConnectOptions,
    );
    await cryptoReady;
    (conn as Deno.TcpConn).setNoDelay?.(true);
    io = new FrameIO(conn, config);
    if (signal.aborted) throw signal.reason;
    if (options.admit) {
      const no = await options.admit({
        remote: conn.remoteAddr as Deno.NetAddr,
        local: conn.localAddr as Deno.NetAddr,
        role: options.role,
        keyed: !!options.key,
      });
      if (no) throw new CircuitError(no.code, `Dialing ${where} failed: ${no.message}`);
    }
    const target: Target = { pid: url.pid, id: url.id };
    const nc = newNonce();
    const hello: Hello = {
      v: [PROTOCOL_VERSION_MIN, PROTOCOL_VERSION_MAX],
      role: options.role,
      nonce: nc,
      to: target,
      keyed: !!options.key,
      ...(options.from ? { from: options.from } : {}),
    };
    await io.writeOne(packr.pack(hello));
    const ch = packr.unpack(await io.readHandshake("server's challenge")) as {
      error?: unknown;
      nonce?: unknown;
      proof?: unknown;
    };
    if (ch?.error) throw unauthenticatedError(ch.error);
    if (!(ch?.nonce instanceof Uint8Array)) {
      throw new CircuitError("unreachable", `Dialing ${where} failed: malformed handshake`);
    }
    if (options.key) {
      const want = proof(options.key, "server", nc, ch.nonce, target);
      if (!proofMatches(want, ch.proof)) {
        throw new CircuitError(
          "auth",
          `Dialing ${where} failed: the server does not hold our key (key mismatch)`,
        );
      }
      await io.writeOne(packr.pack({ proof: proof(options.key, "client", nc, ch.nonce, target) }));
      const keys = deriveKeys(options.key, nc, ch.nonce, target);
      io.rekey(keys.dialerToTarget, keys.targetToDialer);
    } else {
      await io.writeOne(packr.pack({ proof: null }));
      io.rekey(undefined, undefined);
    }
    let welcome: { error?: unknown; id?: unknown };
    try {
      welcome = packr.unpack(await io.readOne());
    } catch (err) {
      if (err instanceof FrameError) {
        throw new CircuitError("auth", `Dialing ${where} failed: key mismatch`, { cause: err });
      }
      throw err;
    }
    if (welcome?.error) throw unauthenticatedError(welcome.error);
    if (welcome?.id !== url.id) {
      throw new CircuitError("unreachable", `Dialing ${where} failed: malformed welcome`);
    }
    return new Connection(
      io,
      { role: "peer", addr: `${url.host}:${url.port}` },
      1,
      config,
      options.handler,
      options.log,
    );
  } catch (err) {
    io?.close();
    if (!io) {
      try {
        conn?.close();
      } catch { /* closed */ }
    }
    if (signal.aborted) throw abortError(signal, `Dialing ${where}`);
    if (err instanceof CircuitError) throw err;
    if (err instanceof HandshakeViolation) {
      throw new CircuitError("auth", `Dialing ${where} failed: ${err.message}`, { cause: err });
    }
    if (err instanceof FrameError) {
      throw new CircuitError("unreachable", `Dialing ${where} failed: ${err.message}`, {
        cause: err,
      });
    }
    const why = err instanceof Error ? err.message : String(err);
    throw new CircuitError("unreachable", `Dialing ${where} failed: ${why}`, { cause: err });
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/** Options of {@linkcode accept}. */
export interface AcceptOptions {
  /** The cluster key. */
  key?: Uint8Array;
  /** Our identity and URL, checked against the hello and sent in the welcome. */
  self: Target & { url: string };
  /** Picks the handler for the connection, once the far end is known. */
  handlerFor(remote: RemoteInfo): Handler;
  /** Transport limits and timings. */
  config?: Partial<TransportConfig>;
  /** Timings for connections from peer servers, merged over `config`. */
  peerConfig?: Partial<TransportConfig>;
  /** One-line event log. */
  log?: ConnLog;
  /**
   * Where a connection closed or reset before sending a byte (a TCP health check, or a
   * member checking that our port still answers) is reported instead of `log`.
   */
  quietLog?: ConnLog;
  /** Handshake time limit in milliseconds. @default {HANDSHAKE_TIMEOUT_MS} */
  handshakeTimeoutMs?: number;
  /**
   * Decides, after a well-formed hello and before the challenge, whether this peer may go on.
   * Return null to go on, or a refusal that is sent to the dialer as `{error: {code, message}}` and logged.
   */
  admit?: (info: { remote: Deno.NetAddr; local: Deno.NetAddr; role: Role; keyed: boolean }) =>
    | Promise<{ code: "auth"; message: string } | null>
    | { code: "auth"; message: string }
    | null;
}

/** The most of a refusal's message from a peer not yet authenticated that is shown. */
const MAX_UNAUTHENTICATED_MESSAGE_CHARS = 300;

/**
 * The error a peer sent before it was authenticated (a refusal): its code is kept, its
 * message escaped and bounded, since anyone on the path could have written it.
 */
function unauthenticatedError(wire: unknown): CircuitError {
  const e = fromWireError(wire);
  return new CircuitError(
    e.code,
    escapeForLog(e.message, { maxChars: MAX_UNAUTHENTICATED_MESSAGE_CHARS, quote: false }),
  );
}

/**
 * Run the target's side of the handshake on an accepted socket.
 *
 * @param conn the accepted socket
 * @param options key, identity, handler
 * @returns the connection, or null when the handshake failed (logged, socket closed)
 */
export async function accept(conn: Deno.Conn, options: AcceptOptions): Promise<Connection | null> {
  const config = transportConfig(options.config);
  const a = conn.remoteAddr as Deno.NetAddr;
  const addr = a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
  (conn as Deno.TcpConn).setNoDelay?.(true);
  const io = new FrameIO(conn, config);
  const timer = setTimeout(() => io.close(), options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS);
  const refuse = async (code: string, message: string) => {
    options.log?.(`refusing connection from ${addr}: ${message}`);
    try {
      await io.writeOne(packr.pack({ error: { code, message } }));
    } catch { /* gone */ }
    io.close();
    return null;
  };
  let first: Uint8Array;
  try {
    first = await io.readHandshake("hello");
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    // Closed (or reset) without sending a byte: a health check, not an attack.
    const silent = err instanceof Deno.errors.ConnectionReset ||
      (err instanceof CircuitError && err.message === CLOSED_IN_HANDSHAKE);
    const log = silent ? options.quietLog ?? options.log : options.log;
    log?.(`handshake with ${addr} failed: ${escapeForLog(why, { quote: false })}`);
    io.close();
    clearTimeout(timer);
    return null;
  }
  try {
    const hello = packr.unpack(first) as Hello;
    const bad = checkHello(hello, options.self, !!options.key);
    if (bad) return await refuse(bad.code, bad.message);
    if (options.admit) {
      const no = await options.admit({
        remote: a,
        local: conn.localAddr as Deno.NetAddr,
        role: hello.role,
        keyed: !!options.key,
      });
      if (no) return await refuse(no.code, no.message);
    }
    const ns = newNonce();
    const key = options.key;
    if (key) await loadNodeCrypto();
    await io.writeOne(packr.pack({
      nonce: ns,
      proof: key ? proof(key, "server", hello.nonce, ns, options.self) : null,
    }));
    const p = packr.unpack(await io.readHandshake("client's proof")) as { proof?: unknown };
    if (key) {
      if (!proofMatches(proof(key, "client", hello.nonce, ns, options.self), p?.proof)) {
        return await refuse("auth", "Handshake failed: the client does not hold the key");
      }
      const keys = deriveKeys(key, hello.nonce, ns, options.self);
      io.rekey(keys.targetToDialer, keys.dialerToTarget);
    } else {
      io.rekey(undefined, undefined);
    }
    await io.writeOne(packr.pack({ id: options.self.id, url: options.self.url }));
    const remote: RemoteInfo = {
      role: hello.role,
      addr,
      ...(hello.role === "peer" && hello.from ? { peer: hello.from } : {}),
    };
    const cfg = remote.role === "peer" && options.peerConfig
      ? transportConfig({ ...options.config, ...options.peerConfig })
      : config;
    return new Connection(io, remote, 2, cfg, options.handlerFor(remote), options.log);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    options.log?.(`handshake with ${addr} failed: ${escapeForLog(why, { quote: false })}`);
    io.close();
    return null;
  } finally {
    clearTimeout(timer);
  }
}
