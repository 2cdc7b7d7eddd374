/**
 * Regressions: bugs found in the mux and fixed; these tests keep them fixed.
 *
 * @module
 */

import {
  assertRejectsCircuit,
  bothModes,
  CHUNK,
  closeConn,
  dialTo,
  randomBytes,
  readAll,
  sha256,
  startServer,
  within,
} from "./_testing.ts";
import { assert, assertEquals } from "../tests/_assert.ts";
import { CircuitError } from "./errors.ts";
import { INITIAL_WINDOW_BYTES } from "./mux.ts";

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
      assertEquals(await within(down.result, 5000, "reply"), "down");
      assertEquals(srv.conns[0].mux.stats.callsIn, 0, "callee calls left open");
      const up = c.mux.call("up", null, { upload: true });
      const w = up.upload!.getWriter();
      assertEquals(await within(up.result, 5000, "reply"), "up");
      await w.write(new Uint8Array(1)).catch(() => {});
      assertEquals(c.mux.stats.callsOut, 0, "caller calls left open");
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
      assertEquals((await reader.read()).value?.length, 1000);
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
      assertEquals(await call.result, "ignored your upload");
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
        assertEquals(call.upload, null, "no writer for a whole upload");
        assertEquals(await within(call.result, 10_000, `upload of ${n}`), await sha256(bytes));
      }
      assertEquals(c.mux.stats.callsOut, 0, "calls left open");
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
    assertEquals(await call.result, 64);
    assertEquals(back.length, 64);
    assertEquals(c.mux.stats.framesOut - out0, 1, "frames from the caller");
    assertEquals(s.stats.framesIn - in0, 1, "frames the callee read");
    assert(s.stats.framesOut - back0 <= 2, `callee wrote ${s.stats.framesOut - back0} frames`);
    assertEquals(seen, 1);
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
      assertEquals(short, "timeout", "the 50 ms call");
      assertEquals(later, "timeout", "the 150 ms call");
      assert(shortMs >= 45 && shortMs < 2000, `the 50 ms call ended after ${shortMs} ms`);
      assertEquals(c.mux.stats.callsOut, 1, "calls in flight (the 60 s one)");
      await closeConn(c);
      assertEquals(await long, "closed", "the 60 s call, at close");
    } finally {
      await srv.close();
    }
  },
});
