import fc from "fast-check";
// @ts-types="./_dns_packet.d.ts"
import * as packet from "dns-packet";
import { REPLY_CACHE_ENTRIES, ReplyCache, type Rotation } from "./cache.ts";
import { respond } from "./message.ts";
import { RecordStore } from "./store.ts";
import { parseRecord } from "./zone.ts";
import { assertEquals, UDP } from "./_testing.ts";

function query(id: number, name: string, type: string): Uint8Array {
  return packet.encode({
    id,
    type: "query",
    flags: 1 << 8,
    questions: [{ name, type, class: "IN" }],
  });
}

const hex = (b: Uint8Array | null) => b === null ? "null" : Array.from(b).join(",");

function cached(cache: ReplyCache, store: RecordStore, q: Uint8Array, turn: number) {
  return cache.answer(
    q,
    store.version,
    turn,
    (t: number, rotation: Rotation) => respond(q, store, { ...UDP, turn: t, rotation }),
  );
}

Deno.test("ReplyCache answers exactly as respond() would, across sets, unsets and turns", () => {
  const names = ["a.test", "A.TEST", "b.test", "c.test", "none.test", "alias.test"];
  const types = ["A", "AAAA", "TXT", "MX", "ANY", "CNAME"];
  const records = [
    "a.test. 60 IN A 10.0.0.1",
    "a.test. 60 IN A 10.0.0.2",
    "a.test. 60 IN A 10.0.0.3",
    "a.test. 30 IN A 10.0.0.1",
    "b.test. 60 IN AAAA ::1",
    "b.test. 60 IN MX 10 a.test.",
    'c.test. 60 IN TXT "hello"',
    "alias.test. 60 IN CNAME a.test.",
    "test. 60 IN SOA ns.test. admin.test. 1 7200 3600 1209600 60",
  ];
  const op = fc.oneof(
    fc.record({
      kind: fc.constant("query" as const),
      id: fc.integer({ min: 0, max: 65535 }),
      name: fc.constantFrom(...names),
      type: fc.constantFrom(...types),
    }),
    fc.record({ kind: fc.constant("set" as const), rr: fc.constantFrom(...records) }),
    fc.record({ kind: fc.constant("unset" as const), name: fc.constantFrom(...names) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      const store = new RecordStore(1000);
      const cache = new ReplyCache();
      let turn = 0;
      const given: Array<[Uint8Array | null, string]> = [];
      for (const o of ops) {
        if (o.kind === "set") {
          try {
            store.add(parseRecord(o.rr));
          } catch { /* CNAME beside data: refused, as in the element */ }
        } else if (o.kind === "unset") store.remove(o.name);
        else {
          const q = query(o.id, o.name, o.type);
          const want = respond(q, store, { ...UDP, turn });
          const got = cached(cache, store, q, turn);
          turn++;
          assertEquals(hex(got), hex(want), `${o.name} ${o.type} turn ${turn - 1}`);
          given.push([got, hex(got)]);
        }
      }
      // Replies handed out earlier were never changed by later answers.
      for (const [bytes, was] of given) {
        assertEquals(hex(bytes), was, "a reply given earlier changed");
      }
    }),
    { numRuns: 300 },
  );
});

Deno.test("ReplyCache serves repeats from the cache with each query's own ID", () => {
  const store = new RecordStore(10);
  store.add(parseRecord("a.test. 60 IN A 10.0.0.1"));
  const cache = new ReplyCache();
  const first = cached(cache, store, query(1, "a.test", "A"), 0)!;
  const second = cached(cache, store, query(2, "a.test", "A"), 1)!;
  assertEquals([first[0] << 8 | first[1], second[0] << 8 | second[1]], [1, 2]);
  assertEquals(cache.stats.hits, 1);
  assertEquals(cache.stats.misses, 1);
});

Deno.test("ReplyCache stays within its entry bound under a flood of distinct queries", () => {
  const store = new RecordStore(10);
  const cache = new ReplyCache();
  for (let i = 0; i < REPLY_CACHE_ENTRIES + 500; i++) {
    cached(cache, store, query(i & 0xffff, `n${i}.test`, "A"), i);
  }
  assertEquals(cache.stats.entries, REPLY_CACHE_ENTRIES);
});
