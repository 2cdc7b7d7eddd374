/**
 * The shared assertions' deep equality, as a table: each row two values and whether they
 * are equal; every row is also checked the other way round.
 */

import { Buffer } from "node:buffer";
import {
  assert,
  assertEquals,
  assertNotEquals,
  assertRejects,
  assertThrows,
  equal,
  show,
} from "./_assert.ts";

const cyclic = () => {
  const o: Record<string, unknown> = { a: 1 };
  o.self = o;
  return o;
};

const sparse = (): unknown[] => {
  const a = new Array(2);
  a[1] = 1;
  return a;
};

const withExtra = (): unknown[] => Object.assign([1, 2], { extra: true });

class Point {
  constructor(readonly x: number, readonly y: number) {}
}

const ROWS: Array<[string, unknown, unknown, boolean]> = [
  ["same number", 1, 1, true],
  ["different numbers", 1, 2, false],
  ["NaN equals NaN", NaN, NaN, true],
  ["0 equals -0", 0, -0, true],
  ["number is not its string", 1, "1", false],
  ["null is not undefined", null, undefined, false],
  ["undefined equals undefined", undefined, undefined, true],
  ["bigints by value", 10n, 10n, true],
  ["key order does not matter", { a: 1, b: [1, 2] }, { b: [1, 2], a: 1 }, true],
  ["a missing key differs", { a: 1, b: 2 }, { a: 1 }, false],
  ["an undefined key counts as absent", { a: 1, b: undefined }, { a: 1 }, true],
  ["a null key is present", { a: 1, b: null }, { a: 1 }, false],
  ["nested difference", { a: { b: { c: 1 } } }, { a: { b: { c: 2 } } }, false],
  ["nested NaN", { a: [NaN] }, { a: [NaN] }, true],
  ["array order matters", [1, 2], [2, 1], false],
  ["array lengths", [1], [1, undefined], false],
  ["a hole equals undefined", sparse(), [undefined, 1], true],
  ["array extra props", withExtra(), [1, 2], false],
  ["array is not an array-like object", [1], { 0: 1 }, false],
  ["undefined in an array is not null", [undefined], [null], false],
  ["maps in any order", new Map([["a", 1], ["b", 2]]), new Map([["b", 2], ["a", 1]]), true],
  ["maps with deep values", new Map([["a", { x: [1] }]]), new Map([["a", { x: [1] }]]), true],
  ["maps differing in a value", new Map([["a", 1]]), new Map([["a", 2]]), false],
  ["maps differing in a key", new Map([["a", 1]]), new Map([["b", 1]]), false],
  ["a map is not an object", new Map(), {}, false],
  ["sets in any order", new Set([1, 2, 3]), new Set([3, 1, 2]), true],
  ["sets of objects deeply", new Set([{ a: 1 }, { b: 2 }]), new Set([{ b: 2 }, { a: 1 }]), true],
  ["sets differ", new Set([1, 2]), new Set([1, 3]), false],
  ["sets of objects differ", new Set([{ a: 1 }]), new Set([{ a: 2 }]), false],
  ["a set is not an array", new Set([1]), [1], false],
  ["bytes equal", new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 3]), true],
  ["bytes differ", new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 4]), false],
  ["bytes lengths", new Uint8Array([1, 2]), new Uint8Array([1, 2, 0]), false],
  ["a view of bytes", new Uint8Array([9, 1, 2]).subarray(1), new Uint8Array([1, 2]), true],
  ["bytes are not an array", new Uint8Array([1]), [1], false],
  ["element types matter", new Uint8Array([1]), new Int8Array([1]), false],
  ["floats with NaN", new Float64Array([NaN, 1]), new Float64Array([NaN, 1]), true],
  ["a Buffer is bytes", new Uint8Array([1, 2]), Buffer.from([1, 2]), true],
  ["array buffers", new Uint8Array([1, 2]).buffer, new Uint8Array([1, 2]).buffer, true],
  ["array buffers differ", new Uint8Array([1]).buffer, new Uint8Array([2]).buffer, false],
  ["dates by time", new Date(5), new Date(5), true],
  ["dates differ", new Date(5), new Date(6), false],
  ["a date is not its string", new Date(0), new Date(0).toISOString(), false],
  ["regexps", /a+/g, /a+/g, true],
  ["regexp flags", /a+/g, /a+/i, false],
  ["errors by name and message", new TypeError("x"), new TypeError("x"), true],
  ["errors differ in class", new TypeError("x"), new RangeError("x"), false],
  [
    "errors differ in code",
    Object.assign(new Error("x"), { code: "a" }),
    Object.assign(new Error("x"), { code: "b" }),
    false,
  ],
  ["class instances by their fields", new Point(1, 2), { x: 1, y: 2 }, true],
  ["class instances differ", new Point(1, 2), new Point(1, 3), false],
  ["cycles", cyclic(), cyclic(), true],
];

for (const [name, a, b, want] of ROWS) {
  Deno.test(`equal: ${name}`, () => {
    assert(equal(a, b) === want, `equal(${show(a)}, ${show(b)}) should be ${want}`);
    assert(equal(b, a) === want, `equal(${show(b)}, ${show(a)}) should be ${want} (swapped)`);
  });
}

Deno.test("assertEquals says what was expected and what came, readably", () => {
  const err = assertThrows(() =>
    assertEquals({ m: new Map([["k", NaN]]), b: new Uint8Array([255]) }, { m: 1 }, "ctx")
  );
  assertEquals(
    err.message,
    'ctx: expected {"m":1}, got {"m":{"<Map>":[["k","<NaN>"]]},"b":"<Uint8Array 1 B ff>"}',
  );
  assertEquals(show(undefined), '"<undefined>"');
  assertEquals(show(new Set([1])), '{"<Set>":[1]}');
  assertEquals(show(cyclic()), '{"a":1,"self":"<seen above>"}');
  assertNotEquals({ a: 1 }, { a: 2 });
  assertThrows(() => assertNotEquals([1], [1]));
  assertThrows(() => assert(false, "no"));
});

Deno.test("assertThrows and assertRejects check the error's code", async () => {
  const coded = Object.assign(new Error("x"), { code: "bad request" });
  assertEquals(
    assertThrows(() => {
      throw coded;
    }, "bad request"),
    coded,
  );
  assertThrows(() =>
    assertThrows(() => {
      throw coded;
    }, "not found")
  );
  assertThrows(() => assertThrows(() => 1));
  assertEquals(await assertRejects(Promise.reject(coded), "bad request"), coded);
  let resolved = false;
  await assertRejects(Promise.resolve(1)).catch(() => resolved = true);
  assert(resolved, "a resolved promise fails assertRejects");
});
