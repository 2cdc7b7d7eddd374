/**
 * Connection streams: uploads and downloads arrive intact, writers block at the window
 * without stalling other calls, cancel reaches the other side; streams made on first use.
 *
 * @module
 */

import {
  assertRejectsCircuit,
  bothModes,
  CHUNK,
  closeConn,
  type Deferred,
  deferred,
  dialTo,
  randomBytes,
  readAll,
  sha256,
  startServer,
  withClient,
  within,
  writeUneven,
} from "./_testing.ts";
import { assert, assertEquals } from "../tests/_assert.ts";
import { CircuitError } from "./errors.ts";
import { type Handler, INITIAL_WINDOW_BYTES } from "./mux.ts";
import { DEFAULT_TRANSPORT_CONFIG } from "./config.ts";

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
    assertEquals(got.length, BIG);
    assertEquals(await sha256(got), r.sha, "checksum");
    assertEquals(c.mux.stats.callsOut, 0, "calls left open");
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
    assertEquals(r.length, BIG);
    assertEquals(r.sha, await sha256(data), "checksum");
    await closeConn(c);
  } finally {
    await srv.close();
  }
});

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
        assertEquals(await within(c.mux.request("echo", i), 2000, "echo"), i);
        assert(performance.now() - t0 < 1000, `echo ${i} took ${performance.now() - t0} ms`);
      }
      // another stream on the same connection flows while the first is stuck
      const other = c.mux.call("small", null, { download: true });
      const small = await within(readAll(other.download!, 4 * 1024 * 1024), 10_000, "small");
      assertEquals(small.length, 2 * 1024 * 1024);
      assertEquals(await other.result, "small done");

      assert(
        accepted <= INITIAL_WINDOW_BYTES + CHUNK,
        `writer pushed ${accepted} bytes with nobody reading (window ${INITIAL_WINDOW_BYTES})`,
      );
      assert(
        pendingWrite !== null && !(pendingWrite as Deferred<void>).settled,
        "no write blocked",
      );
      assertEquals(srv.conns[0].mux.stats.callsIn, 1, "callee calls");

      // once the reader reads, everything arrives and the writer finishes
      const all = await within(readAll(slow.download!, TOTAL), 30_000, "slow download");
      assertEquals(all.length, TOTAL);
      for (let off = 0; off < TOTAL; off += CHUNK) {
        assert(all[off] === (off / CHUNK & 0xff), `chunk at ${off} out of order`);
      }
      assertEquals(await slow.result, "big done");
      assertEquals(accepted, TOTAL);
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
    assertEquals(await c.mux.request("echo", "still prompt"), "still prompt");
    assert(!blockedSettled, "blocked write completed with nobody reading");
    release.resolve();
    await within(blocked, 5000, "blocked write");
    await w.close();
    assertEquals(await within(call.result, 5000, "reply"), accepted + CHUNK);
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
    assertEquals(err.code, "closed");
    assertEquals(await within(call.result, 5000, "reply"), "handler returned");
    assertEquals(c.mux.stats.callsOut, 0, "caller calls left open");
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
      assertEquals(err.code, "closed");
      assert((await call.result as number) > 0, "callee read nothing");
      await closeConn(c);
    } finally {
      await srv.close();
    }
  },
);

// ---- streams made on first use ----

bothModes(
  "an upload read only after all of it arrived, or never, behaves as a stream would",
  async (key) => {
    const late = deferred<number>();
    const handler: Handler = async (call) => {
      if (call.op === "echo") return call.body;
      if (call.op === "ignore") return "ignored"; // never touches its upload
      if (call.op === "whole") return (call.up!.body() as Uint8Array).length;
      if (call.op === "ack") return await call.up!.acked();
      // "late": wait until the caller says everything was sent, then read.
      await late.promise;
      return (await readAll(call.upload!, 1 << 20)).length;
    };
    await withClient(key, handler, async (c, srv) => {
      const data = randomBytes(200_000);
      const l = c.mux.call("late", null, { upload: data });
      await c.mux.request("echo", 1); // the upload and its END are in by now
      late.resolve(0);
      assertEquals(await within(l.result, 5000, "late reader"), data.length);
      assertEquals(await c.mux.call("ignore", null, { upload: data }).result, "ignored");
      assertEquals(await c.mux.call("whole", null, { upload: new Uint8Array(1000) }).result, 1000);
      assertEquals(await c.mux.call("whole", null, { upload: new Uint8Array(0) }).result, 0);
      const a = c.mux.call("ack", null, { upload: true });
      await a.upload!.close();
      assertEquals(await within(a.result, 5000, "ack"), true, "an empty upload's end");
      assertEquals(await c.mux.call("ack", null, { upload: new Uint8Array([1]) }).result, false);
      await c.mux.request("echo", 2);
      assertEquals(srv.conns[0].mux.stats.callsIn, 0, "calls left open on the server");
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
        assertEquals(await within(call.result, 10_000, `chunks of ${size}`), count * size);
      }
    });
  },
);

bothModes(
  "down.whole() and up.ack() receive and acknowledge with no stream objects",
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
        const chunks = await within(call.down!.whole(), 10_000, `${n} bytes whole`);
        assertEquals(chunks.reduce((s, ch) => s + ch.length, 0), n, "bytes");
        assert(chunks.every((ch) => ch.every((b) => b === 7)), "bytes changed");
        assertEquals(call.up!.ack(), true);
        assertEquals(await within(call.result, 5000, "reply"), "acked");
      }
      const broken = c.mux.call("msg", 3, { upload: true, download: true });
      await assertRejectsCircuit(broken.down!.whole(), ["closed", "aborted"], "a torn message");
      broken.up!.reset();
      await broken.result.catch(() => {});
      // Once a stream is in use, the whole-message paths step aside.
      const s = c.mux.call("msg", 10, { upload: true, download: true });
      const reader = s.download!.getReader();
      await assertRejectsCircuit(
        s.down!.whole(),
        ["bad request"],
        "whole() while the stream is read",
      );
      await reader.read();
      assertEquals(await reader.read().then((r) => r.done), true);
      await s.upload!.close();
      assertEquals(s.up!.ack(), false);
      assertEquals(await s.result, "acked");
    });
  },
);
