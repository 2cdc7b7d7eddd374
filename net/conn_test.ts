import { accept, type AcceptOptions, type Connection, dial, type DialOptions } from "./conn.ts";
import { type Handler, INITIAL_WINDOW_BYTES } from "./mux.ts";
import { CircuitError, type ErrorCode } from "./errors.ts";
import { DEFAULT_TRANSPORT_CONFIG } from "./config.ts";
import type { CircuitUrl } from "./url.ts";
import { Packr } from "msgpackr/pack";

// ---- tiny local helpers (no @std) ----

function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

function assertEq<T>(got: T, want: T, msg = ""): void {
  const g = JSON.stringify(got), w = JSON.stringify(want);
  if (g !== w) throw new Error(`${msg} expected ${w}, got ${g}`);
}

/** Awaits p, which must reject with a CircuitError whose code is one of `codes`. */
async function assertRejectsCircuit(
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

interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  settled: boolean;
}

function deferred<T = void>(): Deferred<T> {
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

/** Safety net against hangs: rejects after `ms` (the timer is always cleared). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
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

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) {
    crypto.getRandomValues(out.subarray(off, Math.min(n, off + 65536)));
  }
  return out;
}

async function sha256(b: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", b as Uint8Array<ArrayBuffer>));
  return Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Reads a whole stream into a buffer of at most `limit` bytes. */
async function readAll(stream: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array> {
  const buf = new Uint8Array(limit);
  let off = 0;
  for await (const chunk of stream) {
    assert(off + chunk.length <= limit, `stream delivered more than ${limit} bytes`);
    buf.set(chunk, off);
    off += chunk.length;
  }
  return buf.subarray(0, off);
}

/** Writes `data` to a writable in uneven pieces (1 byte to 1 MiB), then closes it. */
async function writeUneven(w: WritableStreamDefaultWriter<Uint8Array>, data: Uint8Array) {
  const sizes = [1, 1000, 65536, 65537, 300_000, 1 << 20, 7];
  let off = 0;
  for (let i = 0; off < data.length; i++) {
    const n = Math.min(sizes[i % sizes.length], data.length - off);
    await w.write(data.subarray(off, off + n));
    off += n;
  }
  await w.close();
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

/** Reads until the far end closes (or resets); returns the byte count. */
async function readUntilEof(conn: Deno.Conn): Promise<number> {
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

/** Registers `fn` once unkeyed and once keyed. */
function bothModes(name: string, fn: (key: Uint8Array | undefined) => Promise<void>): void {
  for (const keyed of [false, true]) {
    Deno.test(`${name} (${keyed ? "keyed" : "unkeyed"})`, () => fn(keyed ? newKey() : undefined));
  }
}

// ---- fixtures ----

const ID = "0123456789abcdef";
const HOST = "127.0.0.1";

function newKey(): Uint8Array {
  return randomBytes(64);
}

interface Server {
  port: number;
  url: CircuitUrl;
  /** Connections accepted (handshake done), in order. */
  conns: Connection[];
  /** Resolves with the next accepted connection not yet taken by nextConn(). */
  nextConn(): Promise<Connection>;
  /** Number of accept() calls that returned null (refused or failed handshakes). */
  refused: number;
  logs: string[];
  /** What went to `quietLog`: connections closed before their first frame. */
  quiet: string[];
  close(): Promise<void>;
}

function startServer(opts: {
  key?: Uint8Array;
  handler: Handler;
  handshakeTimeoutMs?: number;
  admit?: AcceptOptions["admit"];
}): Server {
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

function dialTo(
  url: CircuitUrl,
  key: Uint8Array | undefined,
  more: Partial<DialOptions> = {},
): Promise<Connection> {
  return dial(url, { key, role: "client", ...more });
}

async function closeConn(c: Connection): Promise<void> {
  c.close();
  await c.closed;
}

/** A handler serving "echo" (returns the body) and "fail" (throws body.code). */
const echoHandler: Handler = (call) => {
  if (call.op === "echo") return Promise.resolve(call.body);
  if (call.op === "fail") {
    const b = call.body as { code: ErrorCode; message: string };
    return Promise.reject(new CircuitError(b.code, b.message));
  }
  return Promise.reject(new Error(`unknown op ${call.op}`));
};

/** Checks that a fresh, correctly keyed client still gets served. */
async function assertServes(srv: Server, key: Uint8Array | undefined): Promise<void> {
  const c = await within(dialTo(srv.url, key), 5000, "dial");
  try {
    assertEq(await within(c.mux.request("echo", "still alive"), 5000, "echo"), "still alive");
  } finally {
    await closeConn(c);
  }
}

// ---- request / reply ----

bothModes("Connection.mux.request() gets the handler's reply", async (key) => {
  const seen: string[] = [];
  const srv = startServer({
    key,
    handler: (call) => {
      seen.push(call.op);
      return Promise.resolve({ got: call.body, op: call.op });
    },
  });
  try {
    const c = await dialTo(srv.url, key);
    const body = { n: 1, s: "x".repeat(1000), bytes: new Uint8Array([1, 2, 3]), list: [1, null] };
    const r = await c.mux.request("echo", body) as { got: typeof body; op: string };
    assertEq(r.op, "echo");
    assertEq(r.got.s, body.s);
    assertEq(Array.from(r.got.bytes), [1, 2, 3]);
    assertEq(r.got.list, [1, null]);
    assertEq(await c.mux.request("empty", null), { got: null, op: "empty" });
    assertEq(seen, ["echo", "empty"]);
    const sc = await srv.nextConn();
    assertEq(sc.remote.role, "client");
    assert(sc.remote.addr.startsWith("127.0.0.1:"), sc.remote.addr);
    await closeConn(c);
  } finally {
    await srv.close();
  }
});

bothModes(
  "Connection.mux.request() from the acceptor reaches the dialer's handler",
  async (key) => {
    const srv = startServer({ key, handler: echoHandler });
    try {
      const c = await dialTo(srv.url, key, {
        handler: (call) => Promise.resolve(`dialer got ${call.body}`),
      });
      const sc = await srv.nextConn();
      assertEq(await sc.mux.request("hi", "ping"), "dialer got ping");
      await closeConn(c);
    } finally {
      await srv.close();
    }
  },
);

bothModes("Connection.mux.request() answers 1000 concurrent calls", async (key) => {
  const srv = startServer({
    key,
    // replies leave in a shuffled order
    handler: (call) =>
      new Promise((r) => setTimeout(() => r(call.body), Math.floor(Math.random() * 4))),
  });
  try {
    const c = await dialTo(srv.url, key);
    const N = 1000;
    const replies = await within(
      Promise.all(
        Array.from({ length: N }, (_, i) => c.mux.request("echo", { i, pad: "p".repeat(i % 97) })),
      ),
      20_000,
      "1000 calls",
    );
    for (let i = 0; i < N; i++) {
      const r = replies[i] as { i: number; pad: string };
      assertEq(r.i, i, `reply ${i}:`);
      assertEq(r.pad.length, i % 97);
    }
    assertEq(c.mux.stats.callsOut, 0, "calls left open:");
    await closeConn(c);
  } finally {
    await srv.close();
  }
});

bothModes("Connection.mux.request() rejects with the handler's CircuitError code", async (key) => {
  const srv = startServer({ key, handler: echoHandler });
  try {
    const c = await dialTo(srv.url, key);
    const codes: ErrorCode[] = [
      "not found",
      "busy",
      "auth",
      "unreachable",
      "timeout",
      "bad request",
      "closed",
      "aborted",
    ];
    for (const code of codes) {
      const err = await assertRejectsCircuit(
        c.mux.request("fail", { code, message: `failed with ${code}` }),
        [code],
        code,
      );
      assertEq(err.message, `failed with ${code}`);
    }
    // anything else thrown becomes "bad request" with its message
    const err = await assertRejectsCircuit(c.mux.request("nope", null), ["bad request"]);
    assert(err.message.includes("unknown op nope"), err.message);
    // and the connection is still usable
    assertEq(await c.mux.request("echo", 5), 5);
    // arguments msgpack cannot encode fail the call alone, typed, and leave nothing open
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    for (const bad of [Symbol("s"), 2n ** 70n, cycle]) {
      const e = await assertRejectsCircuit(c.mux.request("echo", bad), ["bad request"]);
      assert(e.message.startsWith(`Call "echo": arguments cannot be sent: `), e.message);
    }
    assertEq(c.mux.stats.callsOut, 0, "calls left open:");
    assertEq(await c.mux.request("echo", 6), 6);
    await closeConn(c);
  } finally {
    await srv.close();
  }
});

// ---- handshake failures ----

Deno.test("dial() with a wrong key rejects with auth and the server keeps serving", async () => {
  const key = newKey();
  const srv = startServer({ key, handler: echoHandler });
  try {
    const err = await assertRejectsCircuit(dialTo(srv.url, newKey()), ["auth"], "dial");
    assert(err.message.includes("key"), err.message);
    await assertServes(srv, key);
    assertEq(srv.refused, 1, "refused handshakes:");
    assertEq(srv.conns.length, 1, "accepted connections:");
  } finally {
    await srv.close();
  }
});

bothModes("dial() with a stale incarnation id or pid rejects with not found", async (key) => {
  const srv = startServer({ key, handler: echoHandler });
  try {
    await assertRejectsCircuit(
      dialTo({ ...srv.url, id: "fedcba9876543210" }, key),
      ["not found"],
      "stale id",
    );
    await assertRejectsCircuit(
      dialTo({ ...srv.url, pid: Deno.pid + 1 }, key),
      ["not found"],
      "stale pid",
    );
    await assertServes(srv, key);
  } finally {
    await srv.close();
  }
});

Deno.test("dial() with a key to an unkeyed server rejects with auth", async () => {
  const srv = startServer({ handler: echoHandler });
  try {
    const err = await assertRejectsCircuit(dialTo(srv.url, newKey()), ["auth"]);
    assert(err.message.includes("without a key"), err.message);
    await assertServes(srv, undefined);
  } finally {
    await srv.close();
  }
});

Deno.test("dial() without a key to a keyed server rejects with auth", async () => {
  const key = newKey();
  const srv = startServer({ key, handler: echoHandler });
  try {
    const err = await assertRejectsCircuit(dialTo(srv.url, undefined), ["auth"]);
    assert(err.message.includes("requires a key"), err.message);
    await assertServes(srv, key);
  } finally {
    await srv.close();
  }
});

Deno.test("dial() to a port nobody listens on rejects with unreachable", async () => {
  const l = Deno.listen({ hostname: HOST, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  await assertRejectsCircuit(
    dialTo({ host: HOST, port, pid: Deno.pid, id: ID }, undefined),
    ["unreachable"],
  );
});

// ---- hostile raw clients ----

/** Connects a raw socket, sends `bytes` (optionally half-closing), waits for the server to hang up. */
async function rawExchange(port: number, bytes: Uint8Array, halfClose: boolean): Promise<void> {
  const raw = await Deno.connect({ hostname: HOST, port });
  try {
    try {
      await writeAll(raw, bytes);
      if (halfClose) await raw.closeWrite();
    } catch { /* the server may hang up first */ }
    await within(readUntilEof(raw), 5000, "server hang-up");
  } finally {
    raw.close();
  }
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

bothModes("accept() drops a raw client sending garbage and keeps serving", async (key) => {
  const srv = startServer({ key, handler: echoHandler });
  try {
    const garbage = [
      cat(new Uint8Array([0xff]), randomBytes(2000)), // oversized prefix, then noise
      cat(u32(16), randomBytes(16)), // a frame of random bytes
      cat(u32(6), new Uint8Array([0xa5, 0x68, 0x65, 0x6c, 0x6c, 0x6f])), // msgpack "hello"
      cat(u32(1), new Uint8Array([0xc1])), // msgpack "never used" byte
      cat(u32(0)), // an empty frame
    ];
    for (const g of garbage) await rawExchange(srv.port, g, false);
    assertEq(srv.refused, garbage.length, "refused handshakes:");
    await assertServes(srv, key);
  } finally {
    await srv.close();
  }
});

bothModes(
  "accept() reports a connection closed before its first frame quietly, garbage loudly",
  async (key) => {
    const srv = startServer({ key, handler: echoHandler });
    try {
      // A TCP health check: connect, close.
      (await Deno.connect({ hostname: HOST, port: srv.port })).close();
      await rawExchange(srv.port, cat(u32(16), randomBytes(16)), false);
      await assertServes(srv, key);
      assertEq(srv.refused, 2, "refused handshakes:");
      assertEq(srv.quiet.length, 1, "quiet lines:");
      assert(srv.quiet[0].includes("closed during the handshake"), srv.quiet[0]);
      assertEq(srv.logs.length, 1, "logged lines:");
    } finally {
      await srv.close();
    }
  },
);

bothModes("accept() drops a raw client sending a huge length prefix", async (key) => {
  const srv = startServer({ key, handler: echoHandler });
  try {
    await rawExchange(srv.port, u32(0xffffffff), false);
    assert(srv.logs.some((l) => l.includes("exceeds the limit")), srv.logs.join("\n"));
    await assertServes(srv, key);
  } finally {
    await srv.close();
  }
});

bothModes("accept() drops a raw client whose stream ends inside a frame", async (key) => {
  const srv = startServer({ key, handler: echoHandler });
  try {
    await rawExchange(srv.port, cat(u32(100), new Uint8Array([1, 2, 3])), true);
    assert(srv.logs.some((l) => l.includes("stream ended inside a frame")), srv.logs.join("\n"));
    await assertServes(srv, key);
  } finally {
    await srv.close();
  }
});

Deno.test("accept() drops a raw client that stalls inside the handshake", async () => {
  const srv = startServer({ handler: echoHandler, handshakeTimeoutMs: 200 });
  try {
    const raw = await Deno.connect({ hostname: HOST, port: srv.port });
    try {
      await writeAll(raw, cat(u32(100), new Uint8Array([1, 2])));
      await within(readUntilEof(raw), 5000, "handshake timeout"); // server hangs up by itself
    } finally {
      raw.close();
    }
    await assertServes(srv, undefined);
  } finally {
    await srv.close();
  }
});

// ---- tampering after the handshake ----

interface Proxy {
  port: number;
  /** Client→server bytes forwarded so far. */
  forwarded: number;
  /** Absolute client→server offset of the byte to flip; -1 for none. */
  flipAt: number;
  done: Promise<void>;
}

/** A one-connection TCP proxy that can flip one client→server byte. */
function startProxy(targetPort: number): Proxy {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const proxy: Proxy = {
    port: (listener.addr as Deno.NetAddr).port,
    forwarded: 0,
    flipAt: -1,
    done: Promise.resolve(),
  };
  const pump = async (src: Deno.Conn, dst: Deno.Conn, up: boolean) => {
    const buf = new Uint8Array(65536);
    try {
      for (;;) {
        const n = await src.read(buf);
        if (n === null) break;
        const chunk = buf.slice(0, n);
        if (up) {
          const at = proxy.flipAt - proxy.forwarded;
          if (at >= 0 && at < n) chunk[at] ^= 0x01;
          proxy.forwarded += n;
        }
        await writeAll(dst, chunk);
      }
    } catch { /* reset */ }
    try {
      await dst.closeWrite();
    } catch { /* gone */ }
  };
  proxy.done = (async () => {
    const down = await listener.accept();
    listener.close();
    const up = await Deno.connect({ hostname: HOST, port: targetPort });
    await Promise.all([pump(down, up, true), pump(up, down, false)]);
    down.close();
    up.close();
  })();
  return proxy;
}

Deno.test(
  "Connection closes on a byte flipped mid-stream and the server keeps serving",
  async () => {
    const key = newKey();
    const srv = startServer({ key, handler: echoHandler });
    const proxy = startProxy(srv.port);
    try {
      const c = await dialTo({ ...srv.url, port: proxy.port }, key);
      const sc = await srv.nextConn();
      assertEq(await c.mux.request("echo", "before"), "before");
      // flip the first body byte of the next client→server frame
      proxy.flipAt = proxy.forwarded + 4;
      await assertRejectsCircuit(
        within(c.mux.request("echo", "after"), 5000, "tampered call"),
        ["closed", "unreachable"],
      );
      const why = await sc.closed;
      assert(why.message.includes("Protocol violation"), why.message);
      assert(srv.logs.some((l) => l.includes("MAC mismatch")), srv.logs.join("\n"));
      await c.closed;
      await within(proxy.done, 5000, "proxy shutdown");
      await assertServes(srv, key);
    } finally {
      await srv.close();
      await proxy.done;
    }
  },
);

// ---- cancel and close ----

bothModes("Connection.mux.request() with an aborted signal rejects with aborted", async (key) => {
  const started = deferred();
  const calleeAbort = deferred<unknown>();
  const srv = startServer({
    key,
    handler: (call) => {
      started.resolve();
      return new Promise((resolve) => {
        call.signal.addEventListener("abort", () => {
          calleeAbort.resolve(call.signal.reason);
          resolve("too late");
        }, { once: true });
      });
    },
  });
  try {
    const c = await dialTo(srv.url, key);
    const ac = new AbortController();
    const p = c.mux.request("wait", null, { signal: ac.signal });
    await within(started.promise, 5000, "handler start");
    ac.abort();
    await assertRejectsCircuit(p, ["aborted"]);
    const reason = await within(calleeAbort.promise, 5000, "callee abort");
    assert(reason instanceof CircuitError && reason.code === "aborted", String(reason));
    // a TimeoutError reason maps to "timeout"; an already aborted signal rejects at once
    const ac2 = new AbortController();
    ac2.abort(new DOMException("slow", "TimeoutError"));
    await assertRejectsCircuit(c.mux.request("wait", null, { signal: ac2.signal }), ["timeout"]);
    // the connection still works
    assertEq(c.mux.stats.callsOut, 0);
    await closeConn(c);
  } finally {
    await srv.close();
  }
});

bothModes("Connection.close() rejects pending calls with a CircuitError", async (key) => {
  const started = deferred();
  const calleeAbort = deferred<unknown>();
  const srv = startServer({
    key,
    handler: (call) => {
      started.resolve();
      return new Promise((resolve) => {
        call.signal.addEventListener("abort", () => {
          calleeAbort.resolve(call.signal.reason);
          resolve(null);
        }, { once: true });
      });
    },
  });
  try {
    const c = await dialTo(srv.url, key);
    const pending = [c.mux.request("wait", 1), c.mux.request("wait", 2)];
    const withDownload = c.mux.call("wait", 3, { download: true });
    await within(started.promise, 5000, "handler start");
    c.close();
    for (const p of pending) await assertRejectsCircuit(p, ["closed"]);
    await assertRejectsCircuit(withDownload.result, ["closed"]);
    await assertRejectsCircuit(withDownload.download!.getReader().read(), ["closed"]);
    assertEq((await c.closed).code, "closed");
    // the callee learns through its signal
    const reason = await within(calleeAbort.promise, 5000, "callee abort");
    assert(reason instanceof CircuitError, String(reason));
    // calls after close fail at once
    await assertRejectsCircuit(c.mux.request("wait", 4), ["closed"]);
  } finally {
    await srv.close();
  }
});

bothModes("Connection.close() on the acceptor rejects the dialer's pending calls", async (key) => {
  const started = deferred();
  const srv = startServer({
    key,
    handler: (call) => {
      started.resolve();
      return new Promise((r) => call.signal.addEventListener("abort", () => r(null)));
    },
  });
  try {
    const c = await dialTo(srv.url, key);
    const p = c.mux.request("wait", null);
    await within(started.promise, 5000, "handler start");
    (await srv.nextConn()).close();
    await assertRejectsCircuit(within(p, 5000, "pending call"), ["closed", "unreachable"]);
    await c.closed;
  } finally {
    await srv.close();
  }
});

// ---- streams ----

const BIG = 20 * 1024 * 1024;

bothModes("Connection.mux.call() download delivers 20 MiB intact", async (key) => {
  const srv = startServer({
    key,
    handler: async (call) => {
      const data = randomBytes(BIG);
      await writeUneven(call.download!.getWriter(), data);
      return { sha: await sha256(data), length: data.length };
    },
  });
  try {
    const c = await dialTo(srv.url, key);
    const call = c.mux.call("download", null, { download: true });
    assert(call.upload === null && call.download !== null);
    const got = await within(readAll(call.download!, BIG), 60_000, "download");
    const r = await call.result as { sha: string; length: number };
    assertEq(got.length, BIG);
    assertEq(await sha256(got), r.sha, "checksum:");
    assertEq(c.mux.stats.callsOut, 0, "calls left open:");
    await closeConn(c);
  } finally {
    await srv.close();
  }
});

bothModes("Connection.mux.call() upload delivers 20 MiB intact", async (key) => {
  const srv = startServer({
    key,
    handler: async (call) => {
      assert(call.upload !== null && call.download === null);
      const got = await readAll(call.upload!, BIG);
      return { sha: await sha256(got), length: got.length };
    },
  });
  try {
    const c = await dialTo(srv.url, key);
    const call = c.mux.call("upload", null, { upload: true });
    const data = randomBytes(BIG);
    await within(writeUneven(call.upload!.getWriter(), data), 60_000, "upload");
    const r = await within(call.result, 60_000, "upload reply") as { sha: string; length: number };
    assertEq(r.length, BIG);
    assertEq(r.sha, await sha256(data), "checksum:");
    await closeConn(c);
  } finally {
    await srv.close();
  }
});

const CHUNK = DEFAULT_TRANSPORT_CONFIG.maxChunkBytes;

bothModes(
  "Connection.mux.call() download blocks its writer at the window without stalling other calls",
  async (key) => {
    const TOTAL = 10 * 1024 * 1024;
    let accepted = 0; // bytes whose write() resolved
    let pendingWrite: Deferred<void> | null = null;
    const reachedWindow = deferred();
    const srv = startServer({
      key,
      handler: async (call) => {
        if (call.op === "echo") return call.body;
        if (call.op === "small") {
          await writeUneven(call.download!.getWriter(), new Uint8Array(2 * 1024 * 1024).fill(7));
          return "small done";
        }
        const w = call.download!.getWriter();
        for (let off = 0; off < TOTAL; off += CHUNK) {
          const d = deferred();
          pendingWrite = d;
          await w.write(new Uint8Array(CHUNK).fill(off / CHUNK));
          d.resolve();
          accepted += CHUNK;
          if (accepted >= INITIAL_WINDOW_BYTES) reachedWindow.resolve();
        }
        await w.close();
        return "big done";
      },
    });
    try {
      const c = await dialTo(srv.url, key);
      const slow = c.mux.call("big", null, { download: true });
      await within(reachedWindow.promise, 5000, "writer reaching the window");
      // Many round trips on the same connection: each stays prompt, and give an
      // unthrottled writer every chance to run ahead.
      for (let i = 0; i < 20; i++) {
        const t0 = performance.now();
        assertEq(await within(c.mux.request("echo", i), 2000, "echo"), i);
        assert(performance.now() - t0 < 1000, `echo ${i} took ${performance.now() - t0} ms`);
      }
      // another stream on the same connection flows while the first is stuck
      const other = c.mux.call("small", null, { download: true });
      const small = await within(readAll(other.download!, 4 * 1024 * 1024), 10_000, "small");
      assertEq(small.length, 2 * 1024 * 1024);
      assertEq(await other.result, "small done");

      assert(
        accepted <= INITIAL_WINDOW_BYTES + CHUNK,
        `writer pushed ${accepted} bytes with nobody reading (window ${INITIAL_WINDOW_BYTES})`,
      );
      assert(
        pendingWrite !== null && !(pendingWrite as Deferred<void>).settled,
        "no write blocked",
      );
      assertEq(srv.conns[0].mux.stats.callsIn, 1, "callee calls:");

      // once the reader reads, everything arrives and the writer finishes
      const all = await within(readAll(slow.download!, TOTAL), 30_000, "slow download");
      assertEq(all.length, TOTAL);
      for (let off = 0; off < TOTAL; off += CHUNK) {
        assert(all[off] === (off / CHUNK & 0xff), `chunk at ${off} out of order`);
      }
      assertEq(await slow.result, "big done");
      assertEq(accepted, TOTAL);
      await closeConn(c);
    } finally {
      await srv.close();
    }
  },
);

bothModes("Connection.mux.call() upload blocks the caller's writer at the window", async (key) => {
  const handlerStarted = deferred<ReadableStream<Uint8Array>>();
  const release = deferred();
  const srv = startServer({
    key,
    handler: async (call) => {
      if (call.op === "echo") return call.body;
      handlerStarted.resolve(call.upload!);
      await release.promise; // does not read until told
      const got = await readAll(call.upload!, 8 * 1024 * 1024);
      return got.length;
    },
  });
  try {
    const c = await dialTo(srv.url, key);
    const call = c.mux.call("up", null, { upload: true });
    const w = call.upload!.getWriter();
    let accepted = 0;
    let blocked: Promise<void> | null = null;
    let blockedSettled = false;
    await within(handlerStarted.promise, 5000, "handler start");
    for (let i = 0; i < 64; i++) {
      const p = w.write(new Uint8Array(CHUNK));
      // a write either completes within a round trip or is blocked on credit
      const done = await Promise.race([
        p.then(() => true),
        c.mux.request("echo", i).then(() => c.mux.request("echo", i)).then(() => false),
      ]);
      if (!done) {
        blocked = p.then(() => {
          blockedSettled = true;
        });
        break;
      }
      accepted += CHUNK;
    }
    assert(blocked !== null, `all ${accepted} bytes were accepted with nobody reading`);
    assert(accepted <= INITIAL_WINDOW_BYTES + CHUNK, `caller pushed ${accepted} bytes`);
    assertEq(await c.mux.request("echo", "still prompt"), "still prompt");
    assert(!blockedSettled, "blocked write completed with nobody reading");
    release.resolve();
    await within(blocked, 5000, "blocked write");
    await w.close();
    assertEq(await within(call.result, 5000, "reply"), accepted + CHUNK);
    await closeConn(c);
  } finally {
    await srv.close();
  }
});

bothModes("ReadableStream.cancel() on a download rejects the callee's writer", async (key) => {
  const writerError = deferred<unknown>();
  const srv = startServer({
    key,
    handler: async (call) => {
      const w = call.download!.getWriter();
      try {
        for (let i = 0; i < 10_000; i++) await w.write(new Uint8Array(CHUNK).fill(1));
        writerError.resolve(null);
      } catch (err) {
        writerError.resolve(err);
      }
      return "handler returned";
    },
  });
  try {
    const c = await dialTo(srv.url, key);
    const call = c.mux.call("download", null, { download: true });
    const reader = call.download!.getReader();
    const first = await reader.read();
    assert(!first.done && first.value.length > 0, "no first chunk");
    await reader.cancel();
    const err = await within(writerError.promise, 5000, "writer rejection");
    assert(err instanceof CircuitError, `writer did not reject with a CircuitError: ${err}`);
    assertEq(err.code, "closed");
    assertEq(await within(call.result, 5000, "reply"), "handler returned");
    assertEq(c.mux.stats.callsOut, 0, "caller calls left open:");
    await closeConn(c);
  } finally {
    await srv.close();
  }
});

bothModes(
  "ReadableStream.cancel() on an upload by the callee rejects the caller's writer",
  async (key) => {
    const srv = startServer({
      key,
      handler: async (call) => {
        const r = call.upload!.getReader();
        const first = await r.read();
        await r.cancel();
        return first.value?.length ?? 0;
      },
    });
    try {
      const c = await dialTo(srv.url, key);
      const call = c.mux.call("up", null, { upload: true });
      const w = call.upload!.getWriter();
      let err: unknown = null;
      try {
        // at most ~one window goes out before the reset lands; 1000 chunks would be 64 MiB
        for (let i = 0; i < 1000; i++) await within(w.write(new Uint8Array(CHUNK)), 5000, "write");
      } catch (e) {
        err = e;
      }
      assert(err instanceof CircuitError, `writer did not reject with a CircuitError: ${err}`);
      assertEq(err.code, "closed");
      assert((await call.result as number) > 0, "callee read nothing");
      await closeConn(c);
    } finally {
      await srv.close();
    }
  },
);

// ---- regressions: bugs found in net/mux.ts and fixed; these tests keep them fixed ----

Deno.test({
  name: "Mux forgets a call whose download the caller canceled",
  // Was a bug (net/mux.ts:163 SendSide.fail never sets `done`/calls onDone, so #gcIn at
  // :660 and #gcOut at :653 keep the entry forever): stats.callsIn stays 1 on the callee
  // after the reply, and callsOut stays 1 on a caller whose upload the callee canceled.

  async fn() {
    const srv = startServer({
      handler: async (call) => {
        if (call.upload) {
          await call.upload.cancel();
          return "up";
        }
        const w = call.download!.getWriter();
        try {
          for (let i = 0; i < 1000; i++) await w.write(new Uint8Array(CHUNK));
        } catch { /* reset by the reader */ }
        return "down";
      },
    });
    try {
      const c = await dialTo(srv.url, undefined);
      const down = c.mux.call("down", null, { download: true });
      const reader = down.download!.getReader();
      await reader.read();
      await reader.cancel();
      assertEq(await within(down.result, 5000, "reply"), "down");
      assertEq(srv.conns[0].mux.stats.callsIn, 0, "callee calls left open:");
      const up = c.mux.call("up", null, { upload: true });
      const w = up.upload!.getWriter();
      assertEq(await within(up.result, 5000, "reply"), "up");
      await w.write(new Uint8Array(1)).catch(() => {});
      assertEq(c.mux.stats.callsOut, 0, "caller calls left open:");
      await closeConn(c);
    } finally {
      await srv.close();
    }
  },
});

Deno.test({
  name: "Connection.mux.call() download fails when the handler throws mid-stream",
  // Was a bug (net/mux.ts:581 #reply sends RES but neither ENDs nor RESETs an unclosed
  // download): the caller's reader hangs forever after the bytes already sent, and the
  // call stays in stats.callsOut / callsIn on both sides.

  async fn() {
    const srv = startServer({
      handler: async (call) => {
        const w = call.download!.getWriter();
        await w.write(new Uint8Array(1000));
        throw new CircuitError("unreachable", "disk failed");
      },
    });
    try {
      const c = await dialTo(srv.url, undefined);
      const call = c.mux.call("download", null, { download: true });
      await assertRejectsCircuit(call.result, ["unreachable"]);
      const reader = call.download!.getReader();
      assertEq((await reader.read()).value?.length, 1000);
      await assertRejectsCircuit(within(reader.read(), 2000, "read after failure"), [
        "unreachable",
        "closed",
        "aborted",
      ]);
      await closeConn(c);
    } finally {
      await srv.close();
    }
  },
});

Deno.test({
  name: "Connection.mux.call() upload writer fails once the callee replied without reading",
  // Was a bug (net/mux.ts:581 #reply does not RESET an unread upload): after the reply
  // the caller's writer blocks forever once the window is used up.

  async fn() {
    const srv = startServer({ handler: () => Promise.resolve("ignored your upload") });
    try {
      const c = await dialTo(srv.url, undefined);
      const call = c.mux.call("up", null, { upload: true });
      assertEq(await call.result, "ignored your upload");
      const w = call.upload!.getWriter();
      let err: unknown = null;
      try {
        for (let i = 0; i < 100; i++) await within(w.write(new Uint8Array(CHUNK)), 2000, "write");
      } catch (e) {
        err = e;
      }
      assert(err instanceof CircuitError, `writer did not fail with a CircuitError: ${err}`);
      await closeConn(c);
    } finally {
      await srv.close();
    }
  },
});

bothModes(
  "Connection.mux.call() sends a whole upload given as bytes, small or large",
  async (key) => {
    const srv = startServer({
      key,
      handler: async (call) => sha256(await readAll(call.upload!, 8 * INITIAL_WINDOW_BYTES)),
    });
    try {
      const c = await dialTo(srv.url, key);
      for (const n of [0, 100, 3 * INITIAL_WINDOW_BYTES + 7]) {
        const bytes = randomBytes(n);
        const call = c.mux.call("sum", null, { upload: bytes });
        assertEq(call.upload, null, "no writer for a whole upload:");
        assertEq(await within(call.result, 10_000, `upload of ${n}`), await sha256(bytes));
      }
      assertEq(c.mux.stats.callsOut, 0, "calls left open:");
      await closeConn(c);
    } finally {
      await srv.close();
    }
  },
);

bothModes("Mux puts a request, its small upload and the END in one frame", async (key) => {
  let seen = 0;
  const srv = startServer({
    key,
    handler: async (call) => {
      // The reply and the download's bytes and END also go back in one frame.
      const got = await readAll(call.upload!, 1024);
      const w = call.download!.getWriter();
      await w.write(got);
      await w.close();
      seen++;
      return got.length;
    },
  });
  try {
    const c = await dialTo(srv.url, key);
    await c.mux.request("warm", null).catch(() => {});
    const s = srv.conns[0].mux;
    const out0 = c.mux.stats.framesOut, in0 = s.stats.framesIn, back0 = s.stats.framesOut;
    // A stream written then closed, as a caller would.
    const call = c.mux.call("echo", null, { upload: true, download: true });
    const w = call.upload!.getWriter();
    await w.write(new Uint8Array(64));
    await w.close();
    const back = await readAll(call.download!, 1024);
    assertEq(await call.result, 64);
    assertEq(back.length, 64);
    assertEq(c.mux.stats.framesOut - out0, 1, "frames from the caller:");
    assertEq(s.stats.framesIn - in0, 1, "frames the callee read:");
    assert(s.stats.framesOut - back0 <= 2, `callee wrote ${s.stats.framesOut - back0} frames`);
    assertEq(seen, 1);
    await closeConn(c);
  } finally {
    await srv.close();
  }
});

Deno.test({
  name: "Mux times calls out by their own deadlines while they share one timer",
  async fn() {
    const srv = startServer({
      // Never replies until the caller goes away.
      handler: (call) => new Promise((_, reject) => call.signal.addEventListener("abort", reject)),
    });
    try {
      const c = await dialTo(srv.url, undefined);
      const outcome = (p: Promise<unknown>) =>
        p.then(() => "resolved", (e) => (e instanceof CircuitError ? e.code : String(e)));
      const t0 = performance.now();
      // A long deadline arms the timer first; a shorter one after it must still fire on
      // time, and one due later than that must be re-armed for when the timer fires.
      const long = outcome(c.mux.call("slow", null, { timeoutMs: 60_000 }).result);
      const shortP = outcome(c.mux.call("slow", null, { timeoutMs: 50 }).result);
      const laterP = outcome(c.mux.call("slow", null, { timeoutMs: 150 }).result);
      const short = await within(shortP, 5000, "the 50 ms call");
      const shortMs = performance.now() - t0;
      const later = await within(laterP, 5000, "the 150 ms call");
      assertEq(short, "timeout", "the 50 ms call:");
      assertEq(later, "timeout", "the 150 ms call:");
      assert(shortMs >= 45 && shortMs < 2000, `the 50 ms call ended after ${shortMs} ms`);
      assertEq(c.mux.stats.callsOut, 1, "calls in flight (the 60 s one):");
      await closeConn(c);
      assertEq(await long, "closed", "the 60 s call, at close:");
    } finally {
      await srv.close();
    }
  },
});

// ---- Mux.forward(): a call relayed through a middle hop ----

/**
 * client → mid → far over real connections: mid's handler forwards every call to far with
 * `Mux.forward`, as a server forwards a call for another server's anchor.
 */
async function relayChain(key: Uint8Array | undefined, farHandler: Handler) {
  const far = startServer({ key, handler: farHandler });
  const toFar = await dialTo(far.url, key, { role: "peer" });
  const mid = startServer({ key, handler: (call) => toFar.mux.forward(call, call.body) });
  const client = await dialTo(mid.url, key);
  return {
    client,
    async close() {
      await closeConn(client);
      await closeConn(toFar);
      await mid.close();
      await far.close();
    },
  };
}

bothModes(
  "Mux.forward() relays an upload and a download larger than a window, intact",
  async (key) => {
    const chain = await relayChain(key, async (call) => {
      // Echo the upload back through the download as it arrives.
      await call.upload!.pipeTo(call.download!);
      return "echoed";
    });
    try {
      const data = randomBytes(3 * INITIAL_WINDOW_BYTES + 12345);
      const call = chain.client.mux.call("echo", null, { upload: true, download: true });
      const [, back, reply] = await within(
        Promise.all([
          writeUneven(call.upload!.getWriter(), data),
          readAll(call.download!, data.length + 1),
          call.result,
        ]),
        20_000,
        "echo through the relay",
      );
      assertEq(await sha256(back), await sha256(data), "bytes back:");
      assertEq(reply, "echoed");
    } finally {
      await chain.close();
    }
  },
);

bothModes(
  "Mux.forward() keeps flow control end to end: the middle holds at most a window",
  async (key) => {
    const started = deferred<ReadableStream<Uint8Array>>();
    const release = deferred();
    const chain = await relayChain(key, async (call) => {
      if (call.op === "echo") return call.body;
      started.resolve(call.upload!);
      await release.promise; // far does not read until told
      return (await readAll(call.upload!, 16 * INITIAL_WINDOW_BYTES)).length;
    });
    try {
      const c = chain.client;
      const call = c.mux.call("up", null, { upload: true });
      const w = call.upload!.getWriter();
      await within(started.promise, 5000, "far handler start");
      let accepted = 0;
      let blocked: Promise<void> | null = null;
      for (let i = 0; i < 200; i++) {
        const p = w.write(new Uint8Array(CHUNK));
        const done = await Promise.race([
          p.then(() => true),
          c.mux.request("echo", i).then(() => c.mux.request("echo", i)).then(() => false),
        ]);
        if (!done) {
          blocked = p;
          break;
        }
        accepted += CHUNK;
      }
      assert(blocked !== null, `all ${accepted} bytes were accepted with nobody reading`);
      // far's window, plus at most the middle's (it grants our credit only as it sends on).
      assert(accepted <= 2 * INITIAL_WINDOW_BYTES + CHUNK, `the client pushed ${accepted} bytes`);
      release.resolve();
      await within(blocked, 5000, "blocked write");
      await w.close();
      assertEq(await within(call.result, 5000, "reply"), accepted + CHUNK);
    } finally {
      await chain.close();
    }
  },
);

bothModes(
  "Mux.forward(): cancel reaches the far handler, a far reset reaches the caller",
  async (key) => {
    const farAborted = deferred();
    const chain = await relayChain(key, async (call) => {
      if (call.op === "hang") {
        await new Promise((r) => call.signal.addEventListener("abort", r, { once: true }));
        farAborted.resolve();
        return null;
      }
      if (call.op === "fail") throw new CircuitError("busy", "far is busy");
      // "half": some bytes, then the download is torn down.
      const w = call.download!.getWriter();
      await w.write(new Uint8Array(1000).fill(7));
      await w.abort();
      return null;
    });
    try {
      const c = chain.client;
      const ac = new AbortController();
      const hang = c.mux.call("hang", null, { signal: ac.signal, download: true });
      await new Promise((r) => setTimeout(r, 50));
      ac.abort();
      await assertRejectsCircuit(hang.result, ["aborted"], "the cancelled call");
      await within(farAborted.promise, 5000, "the far handler's signal");
      await assertRejectsCircuit(c.mux.request("fail", null), ["busy"], "far's error");
      const half = c.mux.call("half", null, { download: true });
      let got = 0;
      const read = (async () => {
        for await (const chunk of half.download!) got += chunk.length;
      })();
      await assertRejectsCircuit(read, ["closed", "aborted"], "the torn download");
      assert(got <= 1000, `read ${got} bytes`);
      await half.result.catch(() => {});
    } finally {
      await chain.close();
    }
  },
);

// ---- streams made on first use ----

/** A server with `handler` and a client dialed to it; `fn` runs with both, then both close. */
async function withClient(
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

bothModes(
  "an upload read only after all of it arrived, or never, behaves as a stream would",
  async (key) => {
    const late = deferred<number>();
    const handler: Handler = async (call) => {
      if (call.op === "echo") return call.body;
      if (call.op === "ignore") return "ignored"; // never touches its upload
      if (call.op === "whole") return call.takeUpload!()!.reduce((n, c) => n + c.length, 0);
      if (call.op === "ack") return await call.uploadEnded!();
      // "late": wait until the caller says everything was sent, then read.
      await late.promise;
      return (await readAll(call.upload!, 1 << 20)).length;
    };
    await withClient(key, handler, async (c, srv) => {
      const data = randomBytes(200_000);
      const l = c.mux.call("late", null, { upload: data });
      await c.mux.request("echo", 1); // the upload and its END are in by now
      late.resolve(0);
      assertEq(await within(l.result, 5000, "late reader"), data.length);
      assertEq(await c.mux.call("ignore", null, { upload: data }).result, "ignored");
      assertEq(await c.mux.call("whole", null, { upload: new Uint8Array(1000) }).result, 1000);
      assertEq(await c.mux.call("whole", null, { upload: new Uint8Array(0) }).result, 0);
      const a = c.mux.call("ack", null, { upload: true });
      await a.upload!.close();
      assertEq(await within(a.result, 5000, "ack"), true, "an empty upload's end:");
      assertEq(await c.mux.call("ack", null, { upload: new Uint8Array([1]) }).result, false);
      await c.mux.request("echo", 2);
      assertEq(srv.conns[0].mux.stats.callsIn, 0, "calls left open on the server:");
    });
  },
);

bothModes(
  "a writer may reuse its chunk once write() resolves: large chunks go uncopied until sealed",
  async (key) => {
    const handler: Handler = async (call) => {
      // Every chunk must be one value throughout: its index.
      const size = call.body as number;
      const bytes = await readAll(call.upload!, 1 << 26);
      for (let i = 0; i < bytes.length; i += size) {
        const v = bytes[i];
        if (v !== (i / size) % 251) return `chunk ${i / size} starts with ${v}`;
        if (bytes.subarray(i, i + size).some((b) => b !== v)) return `chunk ${i / size} torn`;
      }
      return bytes.length;
    };
    await withClient(key, handler, async (c) => {
      // 16 KiB chunks go whole; one over a DATA chunk goes as 64 KiB uncopied plus a
      // copied tail, and must still wait for the uncopied piece.
      const max = DEFAULT_TRANSPORT_CONFIG.maxChunkBytes;
      for (const [size, count] of [[16384, 400], [max + 100, 60]]) {
        const call = c.mux.call("check", size, { upload: true });
        const w = call.upload!.getWriter();
        const buf = new Uint8Array(size); // one buffer, refilled for every chunk
        for (let i = 0; i < count; i++) {
          buf.fill(i % 251);
          await w.write(buf);
        }
        await w.close();
        assertEq(await within(call.result, 10_000, `chunks of ${size}`), count * size);
      }
    });
  },
);

bothModes(
  "downloadWhole() and endUpload() receive and acknowledge with no stream objects",
  async (key) => {
    const handler: Handler = async (call) => {
      const n = call.body as number;
      const w = call.download!.getWriter();
      await w.write(randomBytes(n).fill(7));
      if (n === 3) {
        await w.abort(); // "broken": the message never completes
        return null;
      }
      await w.close();
      // The acknowledgement: the caller ends its upload having read everything.
      const r = await call.upload!.getReader().read();
      return r.done ? "acked" : "not acked";
    };
    await withClient(key, handler, async (c) => {
      // Larger than a window too: the bytes must be credited as they are collected.
      for (const n of [10, 100_000, 3 * INITIAL_WINDOW_BYTES]) {
        const call = c.mux.call("msg", n, { upload: true, download: true });
        const chunks = await within(call.downloadWhole!()!, 10_000, `${n} bytes whole`);
        assertEq(chunks.reduce((s, ch) => s + ch.length, 0), n, "bytes:");
        assert(chunks.every((ch) => ch.every((b) => b === 7)), "bytes changed");
        assertEq(call.endUpload!(), true);
        assertEq(await within(call.result, 5000, "reply"), "acked");
      }
      const broken = c.mux.call("msg", 3, { upload: true, download: true });
      await assertRejectsCircuit(broken.downloadWhole!()!, ["closed", "aborted"], "a torn message");
      broken.resetUpload!();
      await broken.result.catch(() => {});
      // Once a stream is in use, the whole-message paths step aside.
      const s = c.mux.call("msg", 10, { upload: true, download: true });
      const reader = s.download!.getReader();
      assertEq(s.downloadWhole!(), null);
      await reader.read();
      assertEq(await reader.read().then((r) => r.done), true);
      await s.upload!.close();
      assertEq(s.endUpload!(), false);
      assertEq(await s.result, "acked");
    });
  },
);

// ---- admit hook ----

for (const keyed of [false, true]) {
  Deno.test(`accept() admit: a refusal reaches the dialer as its CircuitError, logged (${keyed ? "keyed" : "unkeyed"})`, async () => {
    const key = keyed ? newKey() : undefined;
    const seen: { remote: Deno.NetAddr; local: Deno.NetAddr; role: string; keyed: boolean }[] = [];
    let refuse = true;
    const srv = startServer({
      key,
      handler: echoHandler,
      admit: (info) => {
        seen.push(info);
        return refuse
          ? Promise.resolve({ code: "auth" as const, message: "Refused: another local user" })
          : null;
      },
    });
    try {
      const err = await assertRejectsCircuit(dialTo(srv.url, key), ["auth"], "refused dial");
      assertEq(err.message, "Refused: another local user");
      assertEq(seen.length, 1);
      assertEq([seen[0].role, seen[0].keyed, seen[0].remote.hostname], ["client", keyed, HOST]);
      assertEq(seen[0].local.port, srv.port);
      assert(
        srv.logs.some((l) => l.includes("refusing connection") && l.includes("another local user")),
        srv.logs.join("\n"),
      );
      refuse = false; // null lets the peer go on
      await assertServes(srv, key);
      assertEq(seen.length, 2);
    } finally {
      await srv.close();
    }
  });
}

// ---- what a pending handshake costs (issue 18, item 2) ----

Deno.test("a pending handshake holds a buffer of one handshake frame, not 64 KiB", async () => {
  const key = newKey();
  const srv = startServer({ key, handler: echoHandler, handshakeTimeoutMs: 30_000 });
  const N = 200;
  const socks: Deno.Conn[] = [];
  const packr = new Packr({ useRecords: false, moreTypes: false });
  const hello = packr.pack({
    v: [2, 2],
    role: "client",
    nonce: randomBytes(32),
    to: { pid: Deno.pid, id: ID },
    keyed: true,
  });
  try {
    // Warm up: the first keyed handshake loads node:crypto.
    await assertServes(srv, key);
    const before = Deno.memoryUsage().external;
    for (let i = 0; i < N; i++) {
      const c = await Deno.connect({ hostname: HOST, port: srv.port });
      socks.push(c);
      // Half stay silent, half send a hello and so get a challenge written to them.
      if (i % 2) await writeAll(c, cat(u32(hello.length), hello));
    }
    // Every hello answered: each challenge read back (the server has written it).
    for (let i = 1; i < N; i += 2) {
      const buf = new Uint8Array(512);
      assert((await within(socks[i].read(buf), 5000, "challenge")) !== null, "challenge");
    }
    const perConn = (Deno.memoryUsage().external - before) / N;
    // 64 KiB read buffers (and a 64 KiB slab per challenge) came to about 97 KiB each here.
    assert(perConn < 16 * 1024, `each pending connection holds ${Math.round(perConn)} bytes`);
  } finally {
    for (const c of socks) c.close();
    await srv.close();
  }
});
