import { assert, assertEquals } from "./_testing.ts";
import { BroadcastQueue, retransmitLimit } from "./queue.ts";

const bytes = (tag: number, len = 10) => new Uint8Array(len).fill(tag);

Deno.test("retransmitLimit() is retransmitMult × ceil(log10(n + 1)), at least 1", () => {
  // [mult, n, limit]
  const table: [number, number, number][] = [
    [4, 0, 1],
    [4, 1, 4],
    [4, 9, 4],
    [4, 10, 8],
    [4, 99, 8],
    [4, 100, 12],
    [2, 5, 2],
  ];
  for (const [mult, n, want] of table) assertEquals(retransmitLimit(mult, n), want, `n=${n}`);
});

Deno.test("BroadcastQueue: a newer message about a member replaces the older one", () => {
  const q = new BroadcastQueue({ maxDepth: 10, retransmitMult: 4 });
  let oldDone = false;
  q.enqueue("a", bytes(1), () => oldDone = true);
  q.enqueue("b", bytes(2));
  q.enqueue("a", bytes(3));
  assert(oldDone, "the replaced message is done");
  assertEquals(q.depth, 2);
  assertEquals(q.take(1000, 5), [bytes(3), bytes(2)], "newest first");
  assertEquals(q.stats().invalidated, 1);
});

Deno.test("BroadcastQueue: messages retire after the transmit limit", () => {
  const q = new BroadcastQueue({ maxDepth: 10, retransmitMult: 2 });
  let done = 0;
  q.enqueue("a", bytes(1), () => done++);
  // n = 5: limit 2 × ceil(log10 6) = 2.
  assertEquals(q.take(1000, 5).length, 1);
  assertEquals(done, 0);
  assertEquals(q.take(1000, 5).length, 1);
  assertEquals(done, 1);
  assertEquals(q.depth, 0);
  assertEquals(q.take(1000, 5), []);
  assertEquals(q.stats(), { depth: 0, invalidated: 0, dropped: 0, retired: 1, transmits: 2 });
});

Deno.test("BroadcastQueue: least-sent messages go first and the budget is respected", () => {
  const q = new BroadcastQueue({ maxDepth: 10, retransmitMult: 4 });
  q.enqueue("a", bytes(1, 40));
  q.take(1000, 5);
  q.take(1000, 5); // a has been sent twice
  q.enqueue("b", bytes(2, 40));
  q.enqueue("c", bytes(3, 40));
  assertEquals(q.take(85, 5), [bytes(3, 40), bytes(2, 40)], "fresh ones first, as many as fit");
  assertEquals(q.take(45, 5), [bytes(3, 40)], "then the least sent, newest first");
  assertEquals(q.take(45, 5), [bytes(2, 40)]);
  assertEquals(q.take(45, 5), [bytes(3, 40)], "all sent twice now: newest first");
  assertEquals(q.take(10, 5), [], "nothing fits");
});

Deno.test("BroadcastQueue: at the bound the oldest message is dropped and counted", () => {
  const dropped: string[] = [];
  const q = new BroadcastQueue({ maxDepth: 2, retransmitMult: 4, onDrop: (k) => dropped.push(k) });
  let aDone = false;
  q.enqueue("a", bytes(1), () => aDone = true);
  q.enqueue("b", bytes(2));
  q.enqueue("c", bytes(3));
  assertEquals(q.depth, 2);
  assertEquals(dropped, ["a"]);
  assert(aDone, "a dropped message is done");
  assertEquals(q.stats().dropped, 1);
  assertEquals(q.take(1000, 5), [bytes(3), bytes(2)]);
});

Deno.test("BroadcastQueue.clear() tells every waiter", () => {
  const q = new BroadcastQueue({ maxDepth: 10, retransmitMult: 4 });
  let done = 0;
  q.enqueue("a", bytes(1), () => done++);
  q.enqueue("b", bytes(2), () => done++);
  q.clear();
  assertEquals([q.depth, done], [0, 2]);
});
