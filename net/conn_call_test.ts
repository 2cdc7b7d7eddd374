/**
 * Connection calls: a request gets its reply, in both directions, under load, with the
 * handler's error; cancel and close reach both ends.
 *
 * @module
 */

import {
  assertRejectsCircuit,
  bothModes,
  closeConn,
  deferred,
  dialTo,
  echoHandler,
  startServer,
  within,
} from "./_testing.ts";
import { assert, assertEquals } from "../tests/_assert.ts";
import { CircuitError, ERROR_CODES } from "./errors.ts";

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
    assertEquals(r.op, "echo");
    assertEquals(r.got.s, body.s);
    assertEquals(Array.from(r.got.bytes), [1, 2, 3]);
    assertEquals(r.got.list, [1, null]);
    assertEquals(await c.mux.request("empty", null), { got: null, op: "empty" });
    assertEquals(seen, ["echo", "empty"]);
    const sc = await srv.nextConn();
    assertEquals(sc.remote.role, "client");
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
      assertEquals(await sc.mux.request("hi", "ping"), "dialer got ping");
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
      assertEquals(r.i, i, `reply ${i}`);
      assertEquals(r.pad.length, i % 97);
    }
    assertEquals(c.mux.stats.callsOut, 0, "calls left open");
    await closeConn(c);
  } finally {
    await srv.close();
  }
});

bothModes("Connection.mux.request() rejects with the handler's CircuitError code", async (key) => {
  const srv = startServer({ key, handler: echoHandler });
  try {
    const c = await dialTo(srv.url, key);
    for (const code of ERROR_CODES) {
      const err = await assertRejectsCircuit(
        c.mux.request("fail", { code, message: `failed with ${code}` }),
        [code],
        code,
      );
      assertEquals(err.message, `failed with ${code}`);
    }
    // anything else thrown becomes "bad request" with its message
    const err = await assertRejectsCircuit(c.mux.request("nope", null), ["bad request"]);
    assert(err.message.includes("unknown op nope"), err.message);
    // and the connection is still usable
    assertEquals(await c.mux.request("echo", 5), 5);
    // arguments msgpack cannot encode fail the call alone, typed, and leave nothing open
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    for (const bad of [Symbol("s"), 2n ** 70n, cycle]) {
      const e = await assertRejectsCircuit(c.mux.request("echo", bad), ["bad request"]);
      assert(e.message.startsWith(`Call "echo": arguments cannot be sent: `), e.message);
    }
    assertEquals(c.mux.stats.callsOut, 0, "calls left open");
    assertEquals(await c.mux.request("echo", 6), 6);
    await closeConn(c);
  } finally {
    await srv.close();
  }
});

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
    assertEquals(c.mux.stats.callsOut, 0);
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
    assertEquals((await c.closed).code, "closed");
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
