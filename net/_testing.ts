/**
 * What the connection tests (`net/conn_*_test.ts`) share: a real listener that accepts
 * with {@linkcode accept}, dialing, an echo handler, random bytes and stream plumbing, and
 * a CircuitError assertion. Private to the folder; not published.
 *
 * @module
 */

import { accept, type AcceptOptions, type Connection, dial, type DialOptions } from "./conn.ts";
import type { Handler } from "./mux.ts";
import { CircuitError, type ErrorCode } from "./errors.ts";
import { DEFAULT_TRANSPORT_CONFIG } from "./config.ts";
import type { CircuitUrl } from "./url.ts";
import { assert, assertEquals } from "../tests/_assert.ts";

/** The incarnation id every test server claims. */
export const ID = "0123456789abcdef";
/** Where test servers listen. */
export const HOST = "127.0.0.1";
/** The largest DATA chunk a mux sends, in bytes. */
export const CHUNK = DEFAULT_TRANSPORT_CONFIG.maxChunkBytes;

/**
 * Await `p`, which must reject with a CircuitError whose code is one of `codes`.
 *
 * @param p what should reject
 * @param codes the codes allowed
 * @param what names `p` in failure messages
 * @returns the error
 * @throws {Error} when `p` resolves or rejects otherwise
 */
export async function assertRejectsCircuit(
  p: Promise<unknown>,
  codes: ErrorCode[],
  what = "promise",
): Promise<CircuitError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  if (err === undefined) throw new Error(`${what} resolved; expected CircuitError ${codes}`);
  if (!(err instanceof CircuitError)) throw new Error(`${what}: expected CircuitError, got ${err}`);
  assert(codes.includes(err.code), `${what}: expected code ${codes.join("|")}, got "${err.code}"`);
  return err;
}

/** A promise with its resolver, which knows whether it was resolved. */
export interface Deferred<T> {
  /** Settles when {@linkcode Deferred.resolve} is called. */
  promise: Promise<T>;
  /** Resolve the promise. */
  resolve(v: T): void;
  /** Whether `resolve` was called. */
  settled: boolean;
}

/**
 * A new {@linkcode Deferred}.
 *
 * @returns the unsettled promise and its resolver
 */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const d: Deferred<T> = {
    promise: new Promise<T>((r) => (resolve = r)),
    resolve: (v) => {
      d.settled = true;
      resolve(v);
    },
    settled: false,
  };
  return d;
}

/**
 * Safety net against hangs: `p`, or a rejection after `ms` (the timer is always cleared).
 *
 * @param p what to wait for
 * @param ms how long, in ms
 * @param what names `p` in the timeout's message
 * @returns what `p` resolves with
 */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `n` random bytes (any `n`: filled 64 KiB at a time).
 *
 * @param n how many
 * @returns the bytes
 */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) {
    crypto.getRandomValues(out.subarray(off, Math.min(n, off + 65536)));
  }
  return out;
}

/**
 * The SHA-256 of `b`, in hex.
 *
 * @param b the bytes
 * @returns 64 hex digits
 */
export async function sha256(b: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", b as Uint8Array<ArrayBuffer>));
  return Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * Read a whole stream into a buffer of at most `limit` bytes.
 *
 * @param stream what to read
 * @param limit the most bytes it may deliver
 * @returns the bytes read
 */
export async function readAll(
  stream: ReadableStream<Uint8Array>,
  limit: number,
): Promise<Uint8Array> {
  const buf = new Uint8Array(limit);
  let off = 0;
  for await (const chunk of stream) {
    assert(off + chunk.length <= limit, `stream delivered more than ${limit} bytes`);
    buf.set(chunk, off);
    off += chunk.length;
  }
  return buf.subarray(0, off);
}

/**
 * Write `data` to a writable in uneven pieces (1 byte to 1 MiB), then close it.
 *
 * @param w the writer
 * @param data what to write
 */
export async function writeUneven(
  w: WritableStreamDefaultWriter<Uint8Array>,
  data: Uint8Array,
): Promise<void> {
  const sizes = [1, 1000, 65536, 65537, 300_000, 1 << 20, 7];
  let off = 0;
  for (let i = 0; off < data.length; i++) {
    const n = Math.min(sizes[i % sizes.length], data.length - off);
    await w.write(data.subarray(off, off + n));
    off += n;
  }
  await w.close();
}

/**
 * Read until the far end closes (or resets).
 *
 * @param conn the socket
 * @returns the byte count
 */
export async function readUntilEof(conn: Deno.Conn): Promise<number> {
  const buf = new Uint8Array(65536);
  let total = 0;
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      total += n;
    }
  } catch { /* reset by peer: closed too */ }
  return total;
}

/**
 * A fresh 64-byte mesh key.
 *
 * @returns the key
 */
export function newKey(): Uint8Array {
  return randomBytes(64);
}

/**
 * Register `fn` as two tests: once unkeyed and once keyed.
 *
 * @param name the tests' name (the mode is appended)
 * @param fn the test, given the key or `undefined`
 */
export function bothModes(
  name: string,
  fn: (key: Uint8Array | undefined) => Promise<void>,
): void {
  for (const keyed of [false, true]) {
    Deno.test(`${name} (${keyed ? "keyed" : "unkeyed"})`, () => fn(keyed ? newKey() : undefined));
  }
}

/** A test server: a listener whose every socket goes through {@linkcode accept}. */
export interface Server {
  /** The port it listens on. */
  port: number;
  /** Its address. */
  url: CircuitUrl;
  /** Connections accepted (handshake done), in order. */
  conns: Connection[];
  /** Resolves with the next accepted connection not yet taken by nextConn(). */
  nextConn(): Promise<Connection>;
  /** Number of accept() calls that returned null (refused or failed handshakes). */
  refused: number;
  /** What went to `log`. */
  logs: string[];
  /** What went to `quietLog`: connections closed before their first frame. */
  quiet: string[];
  /** Stop listening and close every connection. */
  close(): Promise<void>;
}

/** Options of {@linkcode startServer}. */
export interface ServerOptions {
  /** The mesh key; none for an unkeyed server. */
  key?: Uint8Array;
  /** Serves every accepted connection's calls. */
  handler: Handler;
  /** Passed to {@linkcode accept}. */
  handshakeTimeoutMs?: number;
  /** Passed to {@linkcode accept}. */
  admit?: AcceptOptions["admit"];
}

/**
 * Listen on {@linkcode HOST} and accept every connection.
 *
 * @param opts key, handler and accept options
 * @returns the running server
 */
export function startServer(opts: ServerOptions): Server {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const url = { host: HOST, port, pid: Deno.pid, id: ID };
  const tasks: Promise<void>[] = [];
  const waiters: Deferred<Connection>[] = [];
  let taken = 0;
  const waiterFor = (i: number) => {
    while (waiters.length <= i) waiters.push(deferred());
    return waiters[i];
  };
  const srv: Server = {
    port,
    url,
    conns: [],
    refused: 0,
    logs: [],
    quiet: [],
    nextConn: () => waiterFor(taken++).promise,
    async close() {
      listener.close();
      await loop;
      await Promise.all(tasks);
      for (const c of srv.conns) c.close();
      await Promise.all(srv.conns.map((c) => c.closed));
    },
  };
  const loop = (async () => {
    try {
      for await (const sock of listener) {
        tasks.push(
          accept(sock, {
            key: opts.key,
            self: { pid: Deno.pid, id: ID, url: `circuit://${HOST}:${port}/${Deno.pid}/Q${ID}` },
            handlerFor: () => opts.handler,
            log: (m) => srv.logs.push(m),
            quietLog: (m) => srv.quiet.push(m),
            handshakeTimeoutMs: opts.handshakeTimeoutMs,
            admit: opts.admit,
          }).then((conn) => {
            if (!conn) {
              srv.refused++;
              return;
            }
            srv.conns.push(conn);
            waiterFor(srv.conns.length - 1).resolve(conn);
          }),
        );
      }
    } catch { /* listener closed */ }
  })();
  return srv;
}

/**
 * Dial `url` as a client.
 *
 * @param url the server
 * @param key the mesh key, if any
 * @param more further dial options
 * @returns the connection
 */
export function dialTo(
  url: CircuitUrl,
  key: Uint8Array | undefined,
  more: Partial<DialOptions> = {},
): Promise<Connection> {
  return dial(url, { key, role: "client", ...more });
}

/**
 * Close `c` and wait until it is closed.
 *
 * @param c the connection
 */
export async function closeConn(c: Connection): Promise<void> {
  c.close();
  await c.closed;
}

/** A handler serving "echo" (returns the body) and "fail" (throws body.code). */
export const echoHandler: Handler = (call) => {
  if (call.op === "echo") return Promise.resolve(call.body);
  if (call.op === "fail") {
    const b = call.body as { code: ErrorCode; message: string };
    return Promise.reject(new CircuitError(b.code, b.message));
  }
  return Promise.reject(new Error(`unknown op ${call.op}`));
};

/**
 * Check that a fresh, correctly keyed client still gets served.
 *
 * @param srv the server
 * @param key its key, if any
 */
export async function assertServes(srv: Server, key: Uint8Array | undefined): Promise<void> {
  const c = await within(dialTo(srv.url, key), 5000, "dial");
  try {
    assertEquals(await within(c.mux.request("echo", "still alive"), 5000, "echo"), "still alive");
  } finally {
    await closeConn(c);
  }
}

/**
 * A server with `handler` and a client dialed to it; `fn` runs with both, then both close.
 *
 * @param key the mesh key, if any
 * @param handler the server's handler
 * @param fn the test
 */
export async function withClient(
  key: Uint8Array | undefined,
  handler: Handler,
  fn: (c: Connection, srv: Server) => Promise<void>,
): Promise<void> {
  const srv = startServer({ key, handler });
  try {
    const c = await dialTo(srv.url, key);
    try {
      await fn(c, srv);
    } finally {
      await closeConn(c);
    }
  } finally {
    await srv.close();
  }
}
