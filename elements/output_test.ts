import fc from "fast-check";
import { OutputBuffer } from "./output.ts";
import { assertEquals } from "../tests/_assert.ts";

async function drain(b: OutputBuffer): Promise<number[]> {
  const r = b.reader();
  const out: number[] = [];
  for (let c = await r.read(); c; c = await r.read()) out.push(...c);
  r.close();
  return out;
}

Deno.test("OutputBuffer keeps only the newest bound bytes with no reader and counts drops", async () => {
  const b = new OutputBuffer(4);
  await b.write(new Uint8Array([1, 2, 3]));
  await b.write(new Uint8Array([4, 5, 6]));
  b.close();
  assertEquals(b.droppedBytes, 2);
  const r = b.reader();
  assertEquals(r.droppedBefore, 2);
  r.close();
  assertEquals(await drain(b), [3, 4, 5, 6]);
});

Deno.test("OutputBuffer gives every reader everything from the oldest retained byte", async () => {
  const b = new OutputBuffer(100);
  await b.write(new Uint8Array([1, 2]));
  const late = drain(b);
  const early = drain(b);
  await b.write(new Uint8Array([3]));
  b.close();
  assertEquals(await early, [1, 2, 3]);
  assertEquals(await late, [1, 2, 3]);
});

Deno.test("OutputBuffer.write() waits for an attached slow reader instead of dropping", async () => {
  const b = new OutputBuffer(4);
  const r = b.reader();
  await b.write(new Uint8Array([1, 2, 3, 4]));
  let done = false;
  const w = b.write(new Uint8Array([5, 6])).then(() => (done = true));
  await new Promise((r) => setTimeout(r, 10));
  assertEquals(done, false, "writer must wait");
  assertEquals(Array.from((await r.read())!), [1, 2, 3, 4]);
  await new Promise((r) => setTimeout(r, 10));
  assertEquals(done, false, "the view just read stays intact until the reader reads again");
  const next = r.read(); // releases that view
  await w;
  assertEquals(done, true);
  assertEquals(b.droppedBytes, 2, "read bytes may then be trimmed");
  assertEquals(Array.from((await next)!), [5, 6]);
  r.close();
});

Deno.test("OutputBuffer held: a full buffer waits for the first reader, who gets every byte", async () => {
  const b = new OutputBuffer(4, 60_000);
  await b.write(new Uint8Array([1, 2, 3]));
  let done = false;
  const w = b.write(new Uint8Array([4, 5, 6])).then(() => (done = true));
  await new Promise((r) => setTimeout(r, 10));
  assertEquals(done, false, "a held writer must wait instead of dropping");
  assertEquals(b.held, true);
  const got = drain(b);
  await w;
  b.close();
  assertEquals(await got, [1, 2, 3, 4, 5, 6]);
  assertEquals(b.held, false, "the first reader ends the hold");
  assertEquals(b.droppedBytes, 2, "bytes every reader has read may then be trimmed");
});

Deno.test("OutputBuffer held: after the hold time nobody reads, the oldest bytes drop again", async () => {
  const b = new OutputBuffer(4, 30);
  await b.write(new Uint8Array([1, 2, 3, 4]));
  const t0 = performance.now();
  const alive = setTimeout(() => {}, 5000); // the hold timer is unref'd: keep the test alive
  await b.write(new Uint8Array([5, 6])); // waits out the hold, then drops 1 and 2
  clearTimeout(alive);
  const waited = performance.now() - t0;
  if (waited < 20) throw new Error(`the writer went on after ${waited.toFixed(1)} ms, not ~30`);
  assertEquals(b.held, false);
  assertEquals(b.droppedBytes, 2);
  b.close();
  assertEquals(await drain(b), [3, 4, 5, 6]);
});

Deno.test("OutputBuffer held: close ends the hold and its timer", async () => {
  const b = new OutputBuffer(4, 60_000);
  await b.write(new Uint8Array([1, 2, 3, 4]));
  b.close(); // sanitizers fail this test if the hold timer were left running
  assertEquals(b.held, false);
  assertEquals(await drain(b), [1, 2, 3, 4]);
});

Deno.test("OutputBuffer: a reader that detaches mid-way loses nothing for the next", async () => {
  const b = new OutputBuffer(10);
  await b.write(new Uint8Array([1, 2, 3]));
  const r = b.reader();
  await r.read();
  r.close();
  b.close();
  assertEquals(await drain(b), [1, 2, 3]);
});

Deno.test("OutputBuffer.reader().read() honours an abort signal", async () => {
  const b = new OutputBuffer(10);
  const r = b.reader();
  const ac = new AbortController();
  const p = r.read(ac.signal);
  ac.abort(new Error("stop"));
  let msg = "";
  await p.catch((e) => (msg = e.message));
  assertEquals(msg, "stop");
  r.close();
});

Deno.test("OutputBuffer never holds more than its bound (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 64 }),
      fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 30 }),
      async (bound, chunks) => {
        const b = new OutputBuffer(bound);
        const all: number[] = [];
        for (const c of chunks) {
          await b.write(c);
          all.push(...c);
          if (b.retainedBytes > bound) throw new Error("over bound");
        }
        b.close();
        assertEquals(await drain(b), all.slice(Math.max(0, all.length - bound)));
        assertEquals(b.droppedBytes, Math.max(0, all.length - bound));
      },
    ),
  );
});

Deno.test("OutputBuffer: a view read stays intact until its reader reads again (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 32 }),
      fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { maxLength: 30 }),
      async (bound, chunks) => {
        const b = new OutputBuffer(bound);
        const r = b.reader();
        const writer = (async () => {
          for (const c of chunks) await b.write(c);
          b.close();
        })();
        const got: number[] = [];
        for (let v = await r.read(); v; v = await r.read()) {
          const copy = Array.from(v);
          for (let i = 0; i < 8; i++) await null; // the writer runs meanwhile
          assertEquals(Array.from(v), copy, "a view changed before its reader read again");
          got.push(...copy);
        }
        await writer;
        assertEquals(got, chunks.flatMap((c) => Array.from(c)));
      },
    ),
    { numRuns: 200 },
  );
});
