import fc from "fast-check";
import {
  checkMessage,
  decodeFrame,
  encodeDataHead,
  encodeMessage,
  MAX_CREDIT_GRANT_BYTES,
  type Message,
  Tag,
} from "./codec.ts";
import { assert, assertEquals } from "./_testing.ts";
import { concat } from "../../tests/_bytes.ts";

const idArb = fc.integer({ min: 0, max: 2 ** 32 - 1 });
/**
 * Request and reply bodies: what JSON can say, which is what the elements send, except a
 * `__proto__` key, which msgpackr decodes as `__proto_` (its guard against prototype
 * pollution) and so does not come back as it went.
 */
const bodyArb = fc.jsonValue({ maxDepth: 3 }).filter((v) =>
  !JSON.stringify(v).includes('"__proto__"')
);

/** Every well-formed message, one arbitrary per tag. */
const messageArb: fc.Arbitrary<Message> = fc.oneof(
  fc.tuple(fc.constant(Tag.REQ), idArb, fc.string(), bodyArb, fc.integer({ min: 0, max: 3 })),
  fc.tuple(
    fc.constant(Tag.RES),
    idArb,
    fc.option(fc.record({ code: fc.string(), message: fc.string() })),
    bodyArb,
  ),
  fc.tuple(fc.constant(Tag.CANCEL), idArb),
  fc.tuple(fc.constant(Tag.DATA), idArb, fc.uint8Array({ maxLength: 300 })),
  fc.tuple(fc.constant(Tag.CREDIT), idArb, fc.integer({ min: 1, max: MAX_CREDIT_GRANT_BYTES })),
  fc.tuple(fc.constant(Tag.END), idArb),
  fc.tuple(fc.constant(Tag.RESET), idArb, fc.constantFrom(0, 1)),
  fc.tuple(fc.constant(Tag.PING), fc.constant(0)),
  fc.tuple(fc.constant(Tag.PONG), fc.constant(0)),
  fc.tuple(fc.constant(Tag.GOAWAY), fc.constant(0), fc.string()),
);

Deno.test("codec: a frame of well-formed messages decodes to the same messages, each accepted", () => {
  fc.assert(
    fc.property(fc.array(messageArb, { minLength: 1, maxLength: 20 }), (msgs) => {
      const decoded = decodeFrame(concat(...msgs.map((m) => encodeMessage(m))));
      assertEquals(decoded, msgs, "round trip");
      for (const m of decoded) assertEquals(checkMessage(m), null, `check of ${Deno.inspect(m)}`);
    }),
    { numRuns: 500 },
  );
});

Deno.test("codec: encodeDataHead() and the payload are the bytes of the whole DATA message", () => {
  const lengthArb = fc.oneof(
    fc.constantFrom(0, 1, 255, 256, 4095, 4096, 65535, 65536, 70000),
    fc.integer({ min: 0, max: 70000 }),
  );
  fc.assert(
    fc.property(idArb, lengthArb, fc.integer(), (id, n, fill) => {
      const payload = new Uint8Array(n).fill(fill & 0xff);
      const whole = encodeMessage([Tag.DATA, id, payload]);
      assertEquals(concat(encodeDataHead(id, n), payload), whole, `DATA of ${n} bytes`);
    }),
    { numRuns: 300 },
  );
});

Deno.test("codec: garbage never throws past decodeFrame(), and checkMessage() always answers", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
      let values: unknown[];
      try {
        values = decodeFrame(bytes);
      } catch {
        return; // not msgpack: the mux closes the connection as a violation
      }
      for (const v of values) {
        const why = checkMessage(v);
        assert(why === null || typeof why === "string");
      }
    }),
    { numRuns: 2000 },
  );
});

Deno.test("codec: checkMessage() names what is wrong with any value, and never throws", () => {
  const tagged = fc.tuple(fc.integer({ min: -1, max: 12 }), fc.anything(), fc.anything());
  fc.assert(
    fc.property(fc.oneof(fc.anything(), tagged), (v) => {
      const why = checkMessage(v);
      assert(why === null || typeof why === "string");
    }),
    { numRuns: 2000 },
  );
});

Deno.test("codec: checkMessage() states each violation", () => {
  const cases: Array<[unknown, string | null]> = [
    [{ tag: 1 }, "message is not a tagged array"],
    [["1", 1], "message is not a tagged array"],
    [[], "message is not a tagged array"],
    [[Tag.DATA, "x", new Uint8Array(1)], "message 4 without an id"],
    [[Tag.END, 1.5], "message 6 without an id"],
    [[Tag.PING], null],
    [[Tag.GOAWAY, undefined, "bye"], null],
    [[Tag.REQ, 3, 7, null, 0], "bad request id 3"],
    [[Tag.REQ, 3, "op"], null],
    [[Tag.DATA, 3, "bytes"], "DATA without bytes"],
    [[Tag.CREDIT, 3, 0], "bad CREDIT"],
    [[Tag.CREDIT, 3, MAX_CREDIT_GRANT_BYTES + 1], "bad CREDIT"],
    [[Tag.CREDIT, 3, "1"], "bad CREDIT"],
    [[Tag.CREDIT, 3, MAX_CREDIT_GRANT_BYTES], null],
    [[Tag.RESET, 3, 9], null], // an unknown direction resets the download, as before
    [[0, 1], "unknown message tag 0"],
    [[11, 1], "unknown message tag 11"],
  ];
  for (const [v, want] of cases) assertEquals(checkMessage(v), want, Deno.inspect(v));
});
