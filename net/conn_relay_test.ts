/**
 * Mux.forward(): a call relayed through a middle hop over real connections.
 *
 * @module
 */

import {
  assertRejectsCircuit,
  bothModes,
  CHUNK,
  closeConn,
  deferred,
  dialTo,
  randomBytes,
  readAll,
  sha256,
  startServer,
  within,
  writeUneven,
} from "./_testing.ts";
import { assert, assertEquals } from "../tests/_assert.ts";
import { CircuitError } from "./errors.ts";
import { type Handler, INITIAL_WINDOW_BYTES } from "./mux.ts";

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
      assertEquals(await sha256(back), await sha256(data), "bytes back");
      assertEquals(reply, "echoed");
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
      assertEquals(await within(call.result, 5000, "reply"), accepted + CHUNK);
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
