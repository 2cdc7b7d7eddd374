/**
 * Assertions for the mux's unit tests (no `@std`): a condition and a deep equality of
 * the values messages carry (primitives, arrays, bytes, plain objects).
 *
 * @module
 */

/**
 * Fail unless `cond` holds.
 *
 * @param cond the condition
 * @param msg what went wrong
 * @throws {Error} when it does not hold
 */
export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

/**
 * Whether two message values are equal: numbers by value (NaN equals NaN), bytes by their
 * bytes, arrays element by element, plain objects by their own keys in any order.
 *
 * @param a one value
 * @param b the other
 * @returns whether they are equal
 */
export function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === "number" && typeof b === "number") return Number.isNaN(a) && Number.isNaN(b);
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || a.length !== b.length) {
      return false;
    }
    return a.every((x, i) => x === b[i]);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => same(x, b[i]));
  }
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  const ka = Object.keys(a), kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  const ra = a as Record<string, unknown>, rb = b as Record<string, unknown>;
  return ka.every((k) => Object.hasOwn(rb, k) && same(ra[k], rb[k]));
}

/**
 * Fail unless `actual` and `expected` are {@linkcode same}.
 *
 * @param actual what the code gave
 * @param expected what it should give
 * @param msg what is compared
 * @throws {Error} when they differ
 */
export function assertSame(actual: unknown, expected: unknown, msg = ""): void {
  if (!same(actual, expected)) {
    throw new Error(`${msg ? msg + ": " : ""}${show(actual)} !== ${show(expected)}`);
  }
}

function show(v: unknown): string {
  return Deno.inspect(v, { depth: 6, iterableLimit: 20 });
}
