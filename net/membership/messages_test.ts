import { assertEquals } from "./_testing.ts";
import {
  addrKey,
  checkRecords,
  decodeMessage,
  encodeMessage,
  MAX_INCARNATION,
  MAX_SYNC_RECORDS,
  type Message,
  MESSAGE_CODES,
} from "./messages.ts";
import { Packr } from "msgpackr/pack";

const packr = new Packr({ useRecords: false, moreTypes: false });
const addr = { host: "10.0.0.1", port: 7946 };
const record = { id: "a", url: "u", addr, inc: 3, start: 5, status: "suspect" as const };

const EXAMPLES: Message[] = [
  { type: "ping", seq: 1, id: "a" },
  { type: "indirectPing", seq: 2, id: "a", addr, nack: true },
  { type: "ack", seq: 3 },
  { type: "nack", seq: 4 },
  { type: "alive", id: "a", url: "circuit://x", addr, inc: 7, start: 1_700_000_000_000 },
  { type: "suspect", id: "a", inc: 7, from: "b" },
  { type: "dead", id: "a", inc: 7, from: "b" },
  { type: "left", id: "a", inc: 7 },
  { type: "sync", seq: 5, reply: true, answer: false, records: [record] },
];

Deno.test("encodeMessage() and decodeMessage() round-trip every message kind", () => {
  assertEquals(EXAMPLES.map((m) => m.type).sort(), Object.keys(MESSAGE_CODES).sort());
  for (const m of EXAMPLES) assertEquals(decodeMessage(encodeMessage(m)), m, m.type);
});

Deno.test("decodeMessage() rejects unknown kinds and malformed fields", () => {
  const bad = [
    { t: 99, seq: 1 },
    { t: MESSAGE_CODES.ping, seq: -1, id: "a" },
    { t: MESSAGE_CODES.ping, seq: 1 },
    { t: MESSAGE_CODES.alive, id: "a", url: "u", addr: { host: "h", port: 0 }, inc: 1, start: 1 },
    { t: MESSAGE_CODES.alive, id: "", url: "u", addr, inc: 1, start: 1 },
    {
      t: MESSAGE_CODES.sync,
      seq: 1,
      reply: true,
      answer: false,
      records: [{ ...record, status: "x" }],
    },
    [1, 2, 3],
    "ping",
  ];
  for (const raw of bad) assertEquals(decodeMessage(packr.pack(raw)), null, JSON.stringify(raw));
  assertEquals(decodeMessage(new Uint8Array([0xc1])), null);
});

Deno.test("decodeMessage() keeps only the schema's fields", () => {
  const raw = { t: MESSAGE_CODES.ack, seq: 1, evil: "x" };
  assertEquals(decodeMessage(packr.pack(raw)), { type: "ack", seq: 1 });
  const alive = {
    t: MESSAGE_CODES.alive,
    id: "a",
    url: "u",
    addr: { ...addr, extra: 1 },
    inc: 1,
    start: 1,
  };
  assertEquals(decodeMessage(packr.pack(alive)), {
    type: "alive",
    id: "a",
    url: "u",
    addr,
    inc: 1,
    start: 1,
  });
});

Deno.test("checkRecords() keeps well-formed records only, copied field by field", () => {
  const extra = { ...record, addr: { ...addr, x: 1 }, evil: true };
  assertEquals(checkRecords([extra, { ...record, inc: -1 }, null, "x"]), [record]);
  assertEquals(checkRecords("nope"), []);
});

Deno.test("addrKey() brackets IPv6 hosts", () => {
  assertEquals(addrKey({ host: "10.0.0.1", port: 1 }), "10.0.0.1:1");
  assertEquals(addrKey({ host: "::1", port: 1 }), "[::1]:1");
});

Deno.test("decodeMessage() rejects incarnations above MAX_INCARNATION, so a refutation always fits", () => {
  const at = (inc: number): Message[] => [
    { type: "alive", id: "a", url: "u", addr, inc, start: 1 },
    { type: "suspect", id: "a", inc, from: "b" },
    { type: "dead", id: "a", inc, from: "b" },
    { type: "left", id: "a", inc },
    { type: "sync", seq: 1, reply: false, answer: true, records: [{ ...record, inc }] },
  ];
  for (const m of at(MAX_INCARNATION)) assertEquals(decodeMessage(encodeMessage(m)), m, m.type);
  for (const inc of [MAX_INCARNATION + 1, 2 ** 53 - 1, 2 ** 53, 1.5, -1, Infinity, NaN]) {
    for (const m of at(inc)) {
      assertEquals(decodeMessage(encodeMessage(m)), null, `${m.type} ${inc}`);
    }
  }
  assertEquals(checkRecords([{ ...record, inc: 2 ** 53 - 1 }]), []);
});

Deno.test("decodeMessage() bounds what a peer sends: visible ASCII ids and URLs, host names, record counts", () => {
  const bad: Message[] = [
    { type: "suspect", id: "a\nX1 member left", inc: 1, from: "b" },
    { type: "suspect", id: "a", inc: 1, from: "b\u001b[2J" },
    { type: "alive", id: "a", url: "circuit://x y", addr, inc: 1, start: 1 },
    { type: "alive", id: "a", url: "u", addr: { host: "evil/host", port: 1 }, inc: 1, start: 1 },
    { type: "ping", seq: 1, id: "é" },
    {
      type: "sync",
      seq: 1,
      reply: false,
      answer: true,
      records: new Array(MAX_SYNC_RECORDS + 1).fill(record),
    },
  ];
  for (const m of bad) {
    assertEquals(decodeMessage(encodeMessage(m)), null, JSON.stringify(m).slice(0, 80));
  }
  const v6 = { type: "ping", seq: 1, id: "a" } as const;
  assertEquals(decodeMessage(encodeMessage(v6)), v6);
  const scoped = { ...EXAMPLES[4], addr: { host: "fe80::1%eth0", port: 7 } } as Message;
  assertEquals(decodeMessage(encodeMessage(scoped)), scoped);
  assertEquals(checkRecords(new Array(MAX_SYNC_RECORDS + 5).fill(record)).length, MAX_SYNC_RECORDS);
});
