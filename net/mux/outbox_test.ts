import { encodeMessage, Tag } from "./codec.ts";
import { DIRECT_DATA_BYTES, Outbox } from "./outbox.ts";
import { assert, assertEquals } from "./_testing.ts";

/** An outbox over a fake connection whose writes finish when the test says. */
function fakeOutbox(coalesceBytes = 1 << 20) {
  const frames: Uint8Array[][] = [];
  const writes: PromiseWithResolvers<void>[] = [];
  const errors: unknown[] = [];
  const outbox = new Outbox({
    coalesceBytes,
    writeFrame: (parts) => {
      frames.push(parts.map((p) => p.slice())); // consumed before it returns
      const w = Promise.withResolvers<void>();
      writes.push(w);
      return w.promise;
    },
    onWriteError: (err) => {
      errors.push(err);
      outbox.close();
    },
  });
  return { outbox, frames, writes, errors };
}

Deno.test("Outbox puts the messages queued in one turn into one frame, then is drained", async () => {
  const { outbox, frames, writes } = fakeOutbox();
  for (let id = 1; id <= 5; id += 2) outbox.push(encodeMessage([Tag.END, id]));
  let drained = false;
  const done = outbox.drained().then(() => (drained = true));
  while (frames.length === 0) await Promise.resolve();
  assertEquals(frames.length, 1);
  assertEquals(frames[0].length, 3);
  assertEquals(outbox.framesOut, 1);
  assertEquals(outbox.messagesOut, 3);
  assert(!drained, "drained before the write finished");
  writes[0].resolve();
  await done;
  assertEquals(outbox.queuedBytes, 0);
});

Deno.test("Outbox cuts frames at coalesceBytes and drains only after the last", async () => {
  const { outbox, frames, writes } = fakeOutbox(8);
  for (let id = 1; id <= 7; id += 2) outbox.push(encodeMessage([Tag.CANCEL, id])); // 3 B each
  const done = outbox.drained();
  for (let i = 0; i < 2; i++) {
    while (frames.length === i) await Promise.resolve();
    writes[i].resolve();
  }
  await done;
  assertEquals(frames.map((f) => f.length), [2, 2]);
});

Deno.test("Outbox keeps large DATA uncopied until sealed, with the bytes of a packed message", async () => {
  const { outbox, frames, writes } = fakeOutbox();
  const body = new Uint8Array(DIRECT_DATA_BYTES).fill(7);
  let sealed = false;
  const p = outbox.pushData(9, body).then(() => (sealed = true));
  while (frames.length === 0) await Promise.resolve();
  await p;
  assert(sealed);
  const joined = new Uint8Array(frames[0].reduce((n, x) => n + x.length, 0));
  let off = 0;
  for (const x of frames[0]) {
    joined.set(x, off);
    off += x.length;
  }
  assertEquals(joined, encodeMessage([Tag.DATA, 9, body]));
  writes[0].resolve();
  await outbox.drained();
});

Deno.test("Outbox.close() releases uncopied bodies and resolves drained()", async () => {
  const { outbox, frames, writes } = fakeOutbox();
  outbox.push(encodeMessage([Tag.END, 1]));
  const done = outbox.drained();
  while (frames.length === 0) await Promise.resolve();
  const late = outbox.pushData(3, new Uint8Array(DIRECT_DATA_BYTES));
  outbox.close();
  await late; // dropped counts as sealed: the owner may reuse the bytes
  writes[0].resolve();
  await done;
  assertEquals(outbox.queuedBytes, 0);
  assertEquals(frames.length, 1);
});

Deno.test("Outbox reports a failed write and drains", async () => {
  const { outbox, frames, writes, errors } = fakeOutbox();
  outbox.push(encodeMessage([Tag.END, 1]));
  while (frames.length === 0) await Promise.resolve();
  writes[0].reject(new Error("broken pipe"));
  await outbox.drained();
  assertEquals(errors.length, 1);
});
