/**
 * Tiny assertions for the membership tests (we cannot import `@std/assert`). Private to
 * the membership folder.
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
 * Fail unless the values are deeply equal (plain data: objects, arrays, bytes).
 *
 * @param actual what we got
 * @param expected what we want
 * @param msg context
 * @throws {Error} showing both values
 */
export function assertEquals(actual: unknown, expected: unknown, msg = ""): void {
  if (!deepEqual(actual, expected)) {
    throw new Error(
      `${msg ? msg + ": " : ""}values differ\n  actual:   ${show(actual)}\n  expected: ${
        show(expected)
      }`,
    );
  }
}

/**
 * Fail unless `fn` throws an error whose `code` (when given) matches.
 *
 * @param fn what should throw
 * @param code the expected `code` property
 * @returns the error
 */
export function assertThrows(fn: () => unknown, code?: string): Error {
  try {
    fn();
  } catch (err) {
    if (code !== undefined) assertEquals((err as { code?: string }).code, code, "error code");
    return err as Error;
  }
  throw new Error("expected an error, nothing was thrown");
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || !a || !b) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array) || a.length !== b.length) {
      return false;
    }
    return a.every((x, i) => x === b[i]);
  }
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) =>
    deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])
  );
}

function show(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (x instanceof Uint8Array ? `bytes(${x.length})` : x));
}
