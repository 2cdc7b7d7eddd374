import fc from "fast-check";
import { Buffer } from "node:buffer";
// @ts-types="./_dns_packet.d.ts"
import * as packet from "dns-packet";
import type { Answer, Packet } from "./_dns_packet.d.ts";
import { RCODE, respond, type RespondOptions } from "./message.ts";
import { RecordStore } from "./store.ts";
import { parseRecord } from "./zone.ts";
import { assertEquals, UDP } from "./_testing.ts";

const TCP: RespondOptions = { ...UDP, transport: "tcp" };

function store(): RecordStore {
  const s = new RecordStore(1000);
  s.add(parseRecord("miek.nl. 3600 IN MX 10 mx.miek.nl."));
  s.add(parseRecord("mx.miek.nl. 60 IN A 1.2.3.4"));
  for (let i = 0; i < 30; i++) s.add(parseRecord(`big. 60 IN TXT "${String(i).repeat(60)}"`));
  return s;
}

function query(name: string, type: string, edns?: number, extra: Packet = {}): Uint8Array {
  const additionals: Answer[] = edns === undefined
    ? []
    : [{ name: ".", type: "OPT", udpPayloadSize: edns, flags: 0 }];
  return packet.encode({
    id: 4242,
    type: "query",
    flags: 1 << 8,
    questions: [{ name, type, class: "IN" }],
    additionals,
    ...extra,
  });
}

function decode(bytes: Uint8Array | null): Required<Packet> {
  if (!bytes) throw new Error("no reply");
  return packet.decode(Buffer.from(bytes));
}

const rcodeOf = (p: Required<Packet>) => p.flags & 0xf;

Deno.test("respond() answers by type, authoritatively, echoing id, question and RD", () => {
  const r = decode(respond(query("MIEK.nl", "MX"), store(), UDP));
  assertEquals([r.id, r.type, rcodeOf(r)], [4242, "response", RCODE.NOERROR]);
  assertEquals(
    [(r.flags >> 10) & 1, (r.flags >> 8) & 1, (r.flags >> 7) & 1],
    [1, 1, 0],
    "AA RD !RA",
  );
  assertEquals(r.questions, [{ name: "MIEK.nl", type: "MX", class: "IN" }]);
  assertEquals(r.answers.map((a) => [a.name, a.type, a.data]), [
    ["MIEK.nl", "MX", { preference: 10, exchange: "mx.miek.nl" }],
  ]);
  assertEquals(r.additionals.map((a) => a.data), ["1.2.3.4"]);
});

Deno.test("respond() says NXDOMAIN for unknown names", () => {
  assertEquals(rcodeOf(decode(respond(query("nope.nl", "A"), store(), UDP))), RCODE.NXDOMAIN);
});

Deno.test("respond() answers EDNS0 with OPT and honours the client's payload size", () => {
  const plain = decode(respond(query("big", "TXT"), store(), UDP));
  assertEquals([(plain.flags >> 9) & 1, plain.answers.length, plain.additionals.length], [1, 0, 0]);
  const small = decode(respond(query("big", "TXT", 1232), store(), UDP));
  assertEquals([(small.flags >> 9) & 1, small.answers.length], [1, 0], "TC within 1232 bytes");
  assertEquals(small.additionals.map((a) => [a.type, a.udpPayloadSize]), [["OPT", 4096]]);
  const large = respond(query("big", "TXT", 4000), store(), UDP)!;
  const r = decode(large);
  assertEquals([(r.flags >> 9) & 1, r.answers.length], [0, 30], "fits in 4000 bytes");
  const tcp = decode(respond(query("big", "TXT"), store(), TCP));
  assertEquals([(tcp.flags >> 9) & 1, tcp.answers.length], [0, 30], "TCP takes all");
});

Deno.test("respond() refuses EDNS versions above 0 with BADVERS", () => {
  const q = packet.encode({
    id: 1,
    type: "query",
    questions: [{ name: "miek.nl", type: "MX" }],
    additionals: [{ name: ".", type: "OPT", udpPayloadSize: 1232, ednsVersion: 1 }],
  });
  const r = decode(respond(q, store(), UDP));
  assertEquals([rcodeOf(r), r.additionals[0].extendedRcode, r.answers.length], [0, 1, 0]);
});

Deno.test("respond() says FORMERR without exactly one question, NOTIMP for other opcodes", () => {
  const none = packet.encode({ id: 7, type: "query", questions: [] });
  assertEquals(rcodeOf(decode(respond(none, store(), UDP))), RCODE.FORMERR);
  const two = packet.encode({
    id: 7,
    type: "query",
    questions: [{ name: "a", type: "A" }, { name: "b", type: "A" }],
  });
  assertEquals(rcodeOf(decode(respond(two, store(), UDP))), RCODE.FORMERR);
  const notify = query("miek.nl", "SOA");
  notify[2] |= 4 << 3;
  assertEquals(rcodeOf(decode(respond(notify, store(), UDP))), RCODE.NOTIMP);
  assertEquals(rcodeOf(decode(respond(query("miek.nl", "AXFR"), store(), TCP))), RCODE.REFUSED);
});

Deno.test("respond() drops responses and runts, and says FORMERR to garbage", () => {
  const resp = query("miek.nl", "A");
  resp[2] |= 0x80;
  assertEquals(respond(resp, store(), UDP), null);
  assertEquals(respond(new Uint8Array(11), store(), UDP), null);
  const garbage = new Uint8Array([0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, 1]);
  const r = decode(respond(garbage, store(), UDP));
  assertEquals([r.id, rcodeOf(r), r.questions.length], [9, RCODE.FORMERR, 0]);
});

Deno.test("respond() never throws, and every reply decodes and fits, for any bytes", () => {
  const s = store();
  const anyBytes = fc.uint8Array({ minLength: 0, maxLength: 600 });
  // Mutations of a real query reach deeper than random bytes.
  const mutated = fc.tuple(
    fc.constantFrom(query("miek.nl", "MX", 1232), query("big", "TXT"), query("x", "A")),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
    fc.nat(),
  ).map(([q, edits, cut]) => {
    const b = q.slice();
    for (const [at, v] of edits) b[at % b.length] = v;
    return b.slice(0, Math.max(12, b.length - (cut % 8)));
  });
  fc.assert(
    fc.property(fc.oneof(anyBytes, mutated), fc.boolean(), (bytes, tcp) => {
      const reply = respond(bytes, s, tcp ? TCP : UDP);
      if (reply === null) return;
      decode(reply);
      if (!tcp && reply.length > 4096) throw new Error(`UDP reply of ${reply.length} bytes`);
    }),
    { numRuns: 5000 },
  );
});
