import {
  DEFAULT_DISCOVERY_CONFIG,
  encodePacket,
  type Packet,
  PacketVerifier,
} from "./discovery.ts";
import { hmacSha256 } from "./hmac.ts";
import { Packr } from "msgpackr/pack";
import { assertEquals } from "../tests/_assert.ts";

const packr = new Packr({ useRecords: false, moreTypes: false });
const KEY = new Uint8Array(32).fill(3);
const NOW = 1_700_000_000_000;

/** A packet with any fields, signed as encodePacket signs. */
function signed(body: Record<string, unknown>): Uint8Array {
  const mac = hmacSha256(KEY, "circuit/1 discovery", packr.pack(body));
  return packr.pack({ ...body, mac });
}

const announce = (over: Record<string, unknown> = {}) => ({
  v: 1,
  t: "announce",
  url: "circuit://10.0.0.1:7000/1/Q0123456789abcdef",
  ts: NOW,
  nonce: new Uint8Array(16).fill(1),
  ...over,
});

Deno.test("discovery PacketVerifier accepts a well-formed signed announcement", () => {
  const v = new PacketVerifier(KEY, DEFAULT_DISCOVERY_CONFIG);
  const p: Packet = {
    t: "announce",
    url: "circuit://h:1/1/Q0123456789abcdef",
    ts: NOW,
    nonce: new Uint8Array(16),
  };
  assertEquals(v.verify(encodePacket(p, KEY), NOW)?.url, p.url);
  assertEquals(v.verify(signed(announce()), NOW)?.t, "announce");
});

Deno.test("discovery PacketVerifier bounds what a peer sends, even signed: clock, nonce, URL, re", () => {
  const v = new PacketVerifier(KEY, DEFAULT_DISCOVERY_CONFIG);
  const bad = [
    announce({ ts: NaN }),
    announce({ ts: Infinity }),
    announce({ nonce: new Uint8Array(60_000) }),
    announce({ url: "circuit://x\nmember X0 left" }),
    announce({ url: "u".repeat(2000) }),
    announce({ t: "reply", re: "not bytes" }),
    announce({ t: "reply", re: new Uint8Array(1000) }),
  ];
  for (const [i, body] of bad.entries()) assertEquals(v.verify(signed(body), NOW), null, `${i}`);
  assertEquals(v.dropped, { malformed: bad.length, forged: 0, stale: 0, replayed: 0 });
});

Deno.test("discovery PacketVerifier never throws: deep nesting, odd shapes, random bytes", () => {
  const v = new PacketVerifier(KEY, DEFAULT_DISCOVERY_CONFIG);
  const deep = new Uint8Array(100_000).fill(0x91); // [[[[…
  const inMap = packr.pack(announce({ x: 0 })).slice(0, -1); // last byte: the value of x
  const nested = new Uint8Array([...inMap, ...deep.subarray(0, 50_000), 0xc0]);
  for (const bytes of [deep, nested, packr.pack([1, 2]), packr.pack(null), new Uint8Array()]) {
    assertEquals(v.verify(bytes, NOW), null);
  }
  for (let i = 0; i < 2000; i++) {
    v.verify(crypto.getRandomValues(new Uint8Array(i % 300)), NOW);
  }
});
