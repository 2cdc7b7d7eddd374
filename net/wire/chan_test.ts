import fc from "fast-check";
import { CircuitError } from "../errors.ts";
import { assert, assertEquals, assertThrows } from "../../tests/_assert.ts";
import {
  BATCH_BYTES,
  BATCH_HEADER_BYTES,
  BATCH_MESSAGES,
  decodeRecvMany,
  encodeRecvMany,
  encodeRecvManyHeader,
  parseRecvManyArgs,
  parseSendManyArgs,
} from "./chan.ts";

/** Run `f`, which must throw a CircuitError with `code` and a message matching `message`. */
function assertRefuses(f: () => unknown, code: string, message: RegExp): void {
  const err = assertThrows(f, code);
  assert(err instanceof CircuitError, `expected a CircuitError, got ${err}`);
  assert(message.test(err.message), `expected a message matching ${message}, got ${err.message}`);
}

Deno.test("decodeRecvMany() returns what encodeRecvMany() encoded, in order", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 20 }),
      (ms) => {
        const out = decodeRecvMany(encodeRecvMany(ms));
        if (out.length !== ms.length) throw new Error(`${out.length} messages of ${ms.length}`);
        ms.forEach((m, i) => assertEquals(out[i], m));
      },
    ),
  );
});

Deno.test("encodeRecvMany() puts each message after its big-endian length", () => {
  const out = encodeRecvMany([new Uint8Array([7]), new Uint8Array([]), new Uint8Array([8, 9])]);
  assertEquals(out, new Uint8Array([0, 0, 0, 1, 7, 0, 0, 0, 0, 0, 0, 0, 2, 8, 9]));
  assertEquals(encodeRecvManyHeader(0x0102_0304), new Uint8Array([1, 2, 3, 4]));
});

Deno.test("encodeRecvManyHeader() followed by the bytes decodes as one message", () => {
  const body = new Uint8Array([1, 2, 3]);
  const whole = new Uint8Array([...encodeRecvManyHeader(body.length), ...body]);
  const out = decodeRecvMany(whole);
  if (out.length !== 1) throw new Error(`${out.length} messages`);
  assertEquals(out[0], body);
});

Deno.test("decodeRecvMany() refuses an empty or torn download", () => {
  const good = encodeRecvMany([new Uint8Array([1, 2, 3]), new Uint8Array([4])]);
  for (const bytes of [new Uint8Array(0), good.subarray(0, 2), good.subarray(0, good.length - 1)]) {
    assertRefuses(() => decodeRecvMany(bytes), "closed", /arrived torn/);
  }
});

Deno.test("decodeRecvMany() refuses every strict prefix that cuts a message", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 5 }),
      (ms) => {
        const whole = encodeRecvMany(ms);
        const ends = new Set<number>();
        let at = 0;
        for (const m of ms) ends.add(at += BATCH_HEADER_BYTES + m.length);
        for (let cut = 0; cut < whole.length; cut++) {
          if (ends.has(cut)) continue; // a prefix of whole messages is a shorter batch
          assertRefuses(() => decodeRecvMany(whole.subarray(0, cut)), "closed", /torn/);
        }
      },
    ),
  );
});

Deno.test("parseRecvManyArgs() takes n from 1 to BATCH_MESSAGES only", () => {
  for (const n of [1, 7, BATCH_MESSAGES]) {
    if (parseRecvManyArgs({ n }) !== n) throw new Error(`n ${n}`);
  }
  for (const raw of [null, {}, { n: 0 }, { n: 1.5 }, { n: "3" }, { n: BATCH_MESSAGES + 1 }]) {
    assertRefuses(() => parseRecvManyArgs(raw), "bad request", /^recvMany: n must be/);
  }
});

Deno.test("parseSendManyArgs() takes 1 to BATCH_MESSAGES byte arrays within BATCH_BYTES", () => {
  const ok = [new Uint8Array(1), new Uint8Array(BATCH_BYTES - 1)];
  if (parseSendManyArgs(ok) !== ok) throw new Error("not the same array");
  const cases: Array<[unknown, RegExp]> = [
    [[], /expected 1 to/],
    [null, /expected 1 to/],
    [Array.from({ length: BATCH_MESSAGES + 1 }, () => new Uint8Array(0)), /expected 1 to/],
    [["text"], /not bytes/],
    [[new Uint8Array(BATCH_BYTES), new Uint8Array(1)], /exceeds/],
  ];
  for (const [raw, message] of cases) {
    assertRefuses(() => parseSendManyArgs(raw), "bad request", message);
  }
});
