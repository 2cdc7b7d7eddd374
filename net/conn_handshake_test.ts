/**
 * Connection handshakes: refusals by key, incarnation and admit hook; hostile raw clients
 * and a byte flipped in flight are dropped while the server keeps serving; what a pending
 * handshake costs.
 *
 * @module
 */

import {
  assertRejectsCircuit,
  assertServes,
  bothModes,
  dialTo,
  echoHandler,
  HOST,
  ID,
  newKey,
  randomBytes,
  readUntilEof,
  startServer,
  within,
} from "./_testing.ts";
import { assert, assertEquals } from "../tests/_assert.ts";
import { concat, u32, writeAll } from "../tests/_bytes.ts";
import { Packr } from "msgpackr/pack";

// ---- handshake failures ----

Deno.test("dial() with a wrong key rejects with auth and the server keeps serving", async () => {
  const key = newKey();
  const srv = startServer({ key, handler: echoHandler });
  try {
    const err = await assertRejectsCircuit(dialTo(srv.url, newKey()), ["auth"], "dial");
    assert(err.message.includes("key"), err.message);
    await assertServes(srv, key);
    assertEquals(srv.refused, 1, "refused handshakes");
    assertEquals(srv.conns.length, 1, "accepted connections");
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

bothModes("accept() drops a raw client sending garbage and keeps serving", async (key) => {
  const srv = startServer({ key, handler: echoHandler });
  try {
    const garbage = [
      concat(new Uint8Array([0xff]), randomBytes(2000)), // oversized prefix, then noise
      concat(u32(16), randomBytes(16)), // a frame of random bytes
      concat(u32(6), new Uint8Array([0xa5, 0x68, 0x65, 0x6c, 0x6c, 0x6f])), // msgpack "hello"
      concat(u32(1), new Uint8Array([0xc1])), // msgpack "never used" byte
      concat(u32(0)), // an empty frame
    ];
    for (const g of garbage) await rawExchange(srv.port, g, false);
    assertEquals(srv.refused, garbage.length, "refused handshakes");
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
      await rawExchange(srv.port, concat(u32(16), randomBytes(16)), false);
      await assertServes(srv, key);
      assertEquals(srv.refused, 2, "refused handshakes");
      assertEquals(srv.quiet.length, 1, "quiet lines");
      assert(srv.quiet[0].includes("closed during the handshake"), srv.quiet[0]);
      assertEquals(srv.logs.length, 1, "logged lines");
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
    await rawExchange(srv.port, concat(u32(100), new Uint8Array([1, 2, 3])), true);
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
      await writeAll(raw, concat(u32(100), new Uint8Array([1, 2])));
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
      assertEquals(await c.mux.request("echo", "before"), "before");
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
      assertEquals(err.message, "Refused: another local user");
      assertEquals(seen.length, 1);
      assertEquals([seen[0].role, seen[0].keyed, seen[0].remote.hostname], ["client", keyed, HOST]);
      assertEquals(seen[0].local.port, srv.port);
      assert(
        srv.logs.some((l) => l.includes("refusing connection") && l.includes("another local user")),
        srv.logs.join("\n"),
      );
      refuse = false; // null lets the peer go on
      await assertServes(srv, key);
      assertEquals(seen.length, 2);
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
      if (i % 2) await writeAll(c, concat(u32(hello.length), hello));
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
