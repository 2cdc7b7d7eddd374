import { assert, assertEquals } from "./_testing.ts";
import { membershipConfig } from "./config.ts";
import { encodeMessage, type Message } from "./messages.ts";
import {
  encodePacket,
  messageCost,
  packetBudget,
  PacketVerifier,
  UdpTransport,
} from "./transport.ts";
import { CircuitError } from "../errors.ts";
import { createHmac } from "node:crypto";
import { Packr } from "msgpackr/pack";

const KEY = new Uint8Array(32).fill(7);
const CONFIG = membershipConfig("lan");
const NOW = 1_700_000_000_000;
const ping: Message = { type: "ping", seq: 1, id: "a" };

Deno.test("encodePacket() and PacketVerifier round-trip signed compound packets", () => {
  const msgs = [encodeMessage(ping), encodeMessage({ type: "ack", seq: 9 })];
  const v = new PacketVerifier(KEY, CONFIG);
  assertEquals(v.verify(encodePacket(msgs, KEY, NOW), NOW), msgs);
  const plain = new PacketVerifier(undefined, CONFIG);
  assertEquals(plain.verify(encodePacket(msgs, undefined, NOW), NOW), msgs);
});

Deno.test("PacketVerifier drops forged packets: wrong key, tampered body or MAC, no MAC", () => {
  const v = new PacketVerifier(KEY, CONFIG);
  const good = encodePacket([encodeMessage(ping)], KEY, NOW);
  const wrongKey = encodePacket([encodeMessage(ping)], new Uint8Array(32).fill(8), NOW);
  const body = good.slice();
  body[body.length - 1] ^= 1;
  const mac = good.slice();
  mac[0] ^= 1;
  const unsigned = encodePacket([encodeMessage(ping)], undefined, NOW);
  for (const p of [wrongKey, body, mac, unsigned, good.subarray(0, 32), new Uint8Array(0)]) {
    assertEquals(v.verify(p, NOW), null);
  }
  assertEquals(v.dropped, { malformed: 0, forged: 6, stale: 0, replayed: 0 });
});

Deno.test("PacketVerifier drops replayed packets and packets outside the skew window", () => {
  const v = new PacketVerifier(KEY, CONFIG);
  const p = encodePacket([encodeMessage(ping)], KEY, NOW);
  assert(v.verify(p, NOW));
  assertEquals(v.verify(p, NOW + 1000), null);
  const old = encodePacket([encodeMessage(ping)], KEY, NOW - CONFIG.packetMaxSkewMs - 1);
  const future = encodePacket([encodeMessage(ping)], KEY, NOW + CONFIG.packetMaxSkewMs + 1);
  assertEquals(v.verify(old, NOW), null);
  assertEquals(v.verify(future, NOW), null);
  assertEquals(v.dropped, { malformed: 0, forged: 0, stale: 2, replayed: 1 });
});

Deno.test("PacketVerifier drops malformed packets", () => {
  const v = new PacketVerifier(undefined, CONFIG);
  assertEquals(v.verify(new Uint8Array([0xc1, 0xff, 0x00]), NOW), null);
  assertEquals(v.verify(new TextEncoder().encode("hello"), NOW), null);
  assertEquals(v.dropped.malformed, 2);
});

Deno.test("PacketVerifier forgets nonces past two skew windows, and counts early evictions", () => {
  const v = new PacketVerifier(KEY, { packetMaxSkewMs: 1000, nonceCacheSize: 2 });
  const packets = [0, 1, 2].map(() => encodePacket([encodeMessage(ping)], KEY, NOW));
  for (const p of packets) assert(v.verify(p, NOW));
  assertEquals(v.evicted, 1, "the cache bound forced one nonce out early");
  // Long after, the first packet would be stale anyway.
  assertEquals(v.verify(packets[0], NOW + 2001), null);
  assertEquals(v.dropped.stale, 1);
});

Deno.test("a packet filled to its budget stays within maxPacketBytes", () => {
  for (const key of [KEY, undefined]) {
    for (const size of [5, 40, 300]) {
      const msg = encodeMessage({
        type: "alive",
        id: "x".repeat(16),
        url: "u".repeat(size),
        addr: { host: "127.0.0.1", port: 7000 },
        inc: 2 ** 40,
        start: NOW,
      });
      const budget = packetBudget(CONFIG.maxPacketBytes, !!key);
      const msgs: Uint8Array[] = [];
      let used = 0;
      while (used + messageCost(msg) <= budget) {
        msgs.push(msg);
        used += messageCost(msg);
      }
      const p = encodePacket(msgs, key, NOW);
      assert(p.length <= CONFIG.maxPacketBytes, `${p.length} bytes with size ${size}`);
      assert(p.length > CONFIG.maxPacketBytes - messageCost(msg) - 48, "the budget is not wasted");
    }
  }
});

Deno.test("UdpTransport sends and receives datagrams on 127.0.0.1", async () => {
  const a = await UdpTransport.bind({ host: "127.0.0.1", port: 0 });
  const b = await UdpTransport.bind({ host: "127.0.0.1", port: 0 });
  try {
    assert(a.addr.port > 0 && a.addr.port !== b.addr.port);
    const got = new Promise<[Uint8Array, number]>((resolve) =>
      b.listen((bytes, from) => resolve([bytes, from.port]))
    );
    a.send(b.addr, new Uint8Array([1, 2, 3]));
    assertEquals(await got, [new Uint8Array([1, 2, 3]), a.addr.port]);
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("UdpTransport.bind() fails as busy when the port is taken", async () => {
  const a = await UdpTransport.bind({ host: "127.0.0.1", port: 0 });
  try {
    await UdpTransport.bind(a.addr).then(
      async (b) => {
        await b.close();
        throw new Error("bound twice");
      },
      (err) => {
        assert(err instanceof CircuitError);
        assertEquals(err.code, "busy");
      },
    );
  } finally {
    await a.close();
  }
});

Deno.test("packet MACs are HMAC-SHA256 of the label and the body, for keys shorter, equal to and longer than a block", () => {
  for (const size of [16, 32, 64, 65, 100]) {
    const key = crypto.getRandomValues(new Uint8Array(size));
    const packet = encodePacket([new Uint8Array([1, 2, 3])], key);
    const want = createHmac("sha256", key).update("circuit/1 membership")
      .update(packet.subarray(32)).digest();
    assertEquals([...packet.subarray(0, 32)], [...want], `key of ${size} bytes`);
    assert(new PacketVerifier(key, membershipConfig()).verify(packet) !== null, "verifies");
  }
});

Deno.test("UdpTransport's admit hook drops refused senders unread and counts them as foreign", async () => {
  const good = await UdpTransport.bind({ host: "127.0.0.1", port: 0 });
  const bad = await UdpTransport.bind({ host: "127.0.0.1", port: 0 });
  const asked: string[] = [];
  const hooks = [
    (from: { hostname: string; port: number }) => from.port === good.addr.port,
    (from: { hostname: string; port: number }) => Promise.resolve(from.port === good.addr.port),
    (from: { hostname: string; port: number }) => {
      if (from.port !== good.addr.port) throw new Error("refused by throwing");
      return true;
    },
  ];
  try {
    for (const [i, admit] of hooks.entries()) {
      const rx = await UdpTransport.bind({ host: "127.0.0.1", port: 0 }, {
        admit: (from) => {
          asked.push(`${from.hostname}:${from.port}`);
          return admit(from);
        },
      });
      try {
        const got: number[] = [];
        let wake = () => {};
        rx.listen((bytes) => {
          got.push(bytes[0]);
          wake();
        });
        // Refused first, then admitted: the admitted one proves the refused one was read.
        bad.send(rx.addr, new Uint8Array([1]));
        bad.send(rx.addr, new Uint8Array([2]));
        await new Promise((r) => setTimeout(r, 50));
        const done = new Promise<void>((r) => (wake = r));
        good.send(rx.addr, new Uint8Array([3]));
        await done;
        assertEquals(got, [3], `hook ${i}`);
        assertEquals(rx.foreign, 2, `hook ${i}`);
      } finally {
        await rx.close();
      }
    }
    assert(asked.includes(`127.0.0.1:${bad.addr.port}`), "the hook saw the sender's address");
  } finally {
    await good.close();
    await bad.close();
  }
});

Deno.test("PacketVerifier drops packets whose clock is not a finite number (NaN once passed the skew check)", () => {
  const packr = new Packr({ useRecords: false, moreTypes: false });
  const v = new PacketVerifier(KEY, CONFIG);
  for (const ts of [NaN, Infinity, -Infinity, "1"]) {
    const body = packr.pack({ v: 1, ts, n: new Uint8Array(12).fill(1), m: [encodeMessage(ping)] });
    const mac = createHmac("sha256", KEY).update("circuit/1 membership").update(body).digest();
    assertEquals(v.verify(new Uint8Array([...mac, ...body]), NOW), null, String(ts));
  }
  assertEquals(v.dropped, { malformed: 4, forged: 0, stale: 0, replayed: 0 });
});
