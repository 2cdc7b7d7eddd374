import { deepStrictEqual, ok } from "node:assert";
import { createHmac } from "node:crypto";
import { Packr } from "msgpackr/pack";
import {
  type DatagramFormat,
  DatagramVerifier,
  MAC_BYTES,
  ReplayWindow,
  sealDatagram,
  type StampedBody,
} from "./datagram.ts";

const packr = new Packr({ useRecords: false, moreTypes: false });
const KEY = new Uint8Array(32).fill(5);
const NOW = 1_700_000_000_000;
const BOUNDS = { maxSkewMs: 1000, nonceCacheSize: 16 };

function read(b: Record<string, unknown>): StampedBody<string> | null {
  if (typeof b.x !== "string" || !(b.n instanceof Uint8Array) || !Number.isFinite(b.ts)) {
    return null;
  }
  return { value: b.x, ts: b.ts as number, nonce: b.n, scope: b.s as string | undefined };
}

const PREFIX: DatagramFormat<string> = { label: "circuit/1 test", mac: "prefix", read };
const FIELD: DatagramFormat<string> = { label: "circuit/1 test", mac: "field", read };

const body = (over: Record<string, unknown> = {}) => ({
  x: "hi",
  ts: NOW,
  n: new Uint8Array(12).fill(1),
  ...over,
});

const bytesOf = (b: Uint8Array) => new Uint8Array(b);

function hmac(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac("sha256", KEY).update("circuit/1 test").update(bytes).digest());
}

Deno.test("sealDatagram() lays out both placements byte for byte: mac ‖ body, and {…body, mac}", () => {
  const b = body();
  const encoded = packr.pack(b);
  deepStrictEqual(bytesOf(sealDatagram(PREFIX, b)), bytesOf(encoded));
  deepStrictEqual(bytesOf(sealDatagram(FIELD, b)), bytesOf(encoded));
  deepStrictEqual(
    bytesOf(sealDatagram(PREFIX, b, KEY)),
    new Uint8Array([...hmac(encoded), ...encoded]),
  );
  deepStrictEqual(
    bytesOf(sealDatagram(FIELD, b, KEY)),
    bytesOf(packr.pack({ ...b, mac: hmac(encoded) })),
  );
});

Deno.test("DatagramVerifier accepts what sealDatagram() makes, keyed or not, in both placements", () => {
  for (const format of [PREFIX, FIELD]) {
    for (const key of [KEY, undefined]) {
      const v = new DatagramVerifier(format, key, BOUNDS);
      deepStrictEqual(v.verify(sealDatagram(format, body(), key), NOW), "hi");
    }
  }
});

Deno.test("DatagramVerifier checks the MAC first in the prefix placement, the shape first in the field placement", () => {
  const garbage = new Uint8Array(64).fill(0xc1);
  const prefix = new DatagramVerifier(PREFIX, KEY, BOUNDS);
  const field = new DatagramVerifier(FIELD, KEY, BOUNDS);
  deepStrictEqual(prefix.verify(garbage, NOW), null);
  deepStrictEqual(field.verify(garbage, NOW), null);
  deepStrictEqual(prefix.dropped, { malformed: 0, forged: 1, stale: 0, replayed: 0 });
  deepStrictEqual(field.dropped, { malformed: 1, forged: 0, stale: 0, replayed: 0 });
  // Well signed, wrong shape: malformed in both.
  const shapeless = { x: 1, ts: NOW, n: new Uint8Array(12) };
  deepStrictEqual(prefix.verify(sealDatagram(PREFIX, shapeless, KEY), NOW), null);
  deepStrictEqual(field.verify(sealDatagram(FIELD, shapeless, KEY), NOW), null);
  deepStrictEqual(prefix.dropped.malformed, 1);
  deepStrictEqual(field.dropped.malformed, 2);
});

Deno.test("DatagramVerifier drops forged, stale and replayed datagrams and counts each", () => {
  for (const format of [PREFIX, FIELD]) {
    const v = new DatagramVerifier(format, KEY, BOUNDS);
    const good = sealDatagram(format, body(), KEY);
    const other = sealDatagram(format, body({ n: new Uint8Array(12) }), new Uint8Array(32));
    const unsigned = sealDatagram(format, body({ n: new Uint8Array(12).fill(2) }));
    const cases: [Uint8Array, number][] = [
      [good, NOW],
      [good, NOW + 10], // replayed
      [other, NOW], // forged: another key
      [unsigned, NOW], // forged: no MAC
      [sealDatagram(format, body({ n: new Uint8Array(12).fill(3) }), KEY), NOW + 1001], // stale
      [sealDatagram(format, body({ n: new Uint8Array(12).fill(4) }), KEY), NOW - 1001], // stale
    ];
    const got = cases.map(([bytes, now]) => v.verify(bytes, now));
    deepStrictEqual(got, ["hi", null, null, null, null, null], format.mac);
    deepStrictEqual(v.dropped, { malformed: 0, forged: 2, stale: 2, replayed: 1 }, format.mac);
  }
});

Deno.test("DatagramVerifier keeps nonces of different scopes apart", () => {
  const v = new DatagramVerifier(FIELD, KEY, BOUNDS);
  ok(v.verify(sealDatagram(FIELD, body({ s: "query" }), KEY), NOW));
  ok(v.verify(sealDatagram(FIELD, body({ s: "reply" }), KEY), NOW));
  deepStrictEqual(v.verify(sealDatagram(FIELD, body({ s: "reply" }), KEY), NOW), null);
  deepStrictEqual(v.dropped.replayed, 1);
});

Deno.test("DatagramVerifier never throws: random bytes, odd maps, deep nesting", () => {
  const deep = new Uint8Array(100_000).fill(0x91);
  for (const format of [PREFIX, FIELD]) {
    for (const key of [KEY, undefined]) {
      const v = new DatagramVerifier(format, key, BOUNDS);
      for (
        const bytes of [deep, packr.pack([1]), packr.pack(null), packr.pack(new Uint8Array(4))]
      ) {
        deepStrictEqual(v.verify(bytes, NOW), null);
      }
      for (let i = 0; i < 500; i++) v.verify(crypto.getRandomValues(new Uint8Array(i)), NOW);
    }
  }
});

Deno.test("ReplayWindow remembers a nonce for two skew windows and counts early evictions", () => {
  const w = new ReplayWindow({ maxSkewMs: 1000, nonceCacheSize: 2 });
  const table: [string, number, boolean, number][] = [
    // id, now, admitted, evicted after
    ["a", NOW, true, 0],
    ["a", NOW + 2000, false, 0], // still inside two windows
    ["b", NOW + 1, true, 0],
    ["c", NOW + 2, true, 1], // full: "a" goes early
    ["a", NOW + 3, true, 2], // so its replay passes; "b" goes early
    ["b", NOW + 2003, true, 2], // "b" was gone; "c" (at +2) expired, not evicted
    ["b", NOW + 2004, false, 2], // a replay of the "b" just remembered
    ["a", NOW + 2005, true, 2], // "a" (at +3) expired
  ];
  for (const [i, [id, now, admitted, evicted]] of table.entries()) {
    deepStrictEqual([w.admit(id, now), w.evicted], [admitted, evicted], `row ${i}`);
  }
});

Deno.test("a datagram too short for a MAC is forged, not read", () => {
  const v = new DatagramVerifier(PREFIX, KEY, BOUNDS);
  for (const n of [0, 1, MAC_BYTES]) deepStrictEqual(v.verify(new Uint8Array(n), NOW), null);
  deepStrictEqual(v.dropped.forged, 3);
});
