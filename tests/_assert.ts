/**
 * The tests' assertions (the project cannot import `@std/assert`): a condition, deep
 * equality, and a rejection or throw with its error.
 *
 * Deep equality ({@linkcode equal}) compares values, not identities or spellings:
 * - numbers by value, with `NaN` equal to `NaN` (and `0` equal to `-0`, as `===` says);
 * - arrays element by element (a hole equals `undefined`), plain objects by their own
 *   enumerable string keys in any order; a key whose value is `undefined` counts as absent
 *   (`{ a: undefined }` equals `{}`), as in the JSON the servers speak;
 * - `Map`s by keys (by identity, as `Map` itself does) and deeply equal values, `Set`s by
 *   members (primitives by value, objects matched deeply), in any order;
 * - typed arrays and `DataView`s of the same element type by their bytes, `ArrayBuffer`s
 *   by their bytes, `Date`s by time, `RegExp`s by source and flags, `Error`s by name and
 *   message plus their own enumerable keys (such as `code`);
 * - an array never equals a non-array, a `Map` a non-`Map`, and so on; other objects are
 *   compared by their own enumerable keys whatever their prototype.
 * Cycles are followed once.
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
 * Fail unless the values are deeply equal (see the module documentation for what equal
 * means).
 *
 * @param actual what we got
 * @param expected what we want
 * @param msg context
 * @throws {Error} showing both values
 */
export function assertEquals(actual: unknown, expected: unknown, msg = ""): void {
  if (!equal(actual, expected)) {
    throw new Error(`${msg ? msg + ": " : ""}expected ${show(expected)}, got ${show(actual)}`);
  }
}

/**
 * Fail when the values are deeply equal.
 *
 * @param actual what we got
 * @param unexpected what it must not be
 * @param msg context
 * @throws {Error} showing the value
 */
export function assertNotEquals(actual: unknown, unexpected: unknown, msg = ""): void {
  if (equal(actual, unexpected)) {
    throw new Error(`${msg ? msg + ": " : ""}expected anything but ${show(unexpected)}`);
  }
}

/**
 * Fail unless `fn` throws; check the error's `code` when one is given.
 *
 * @param fn what should throw
 * @param code the expected `code` property
 * @returns the error
 * @throws {Error} when nothing is thrown or the code differs
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

/**
 * Fail unless `p` rejects; check the error's `code` when one is given.
 *
 * @param p what should reject
 * @param code the expected `code` property
 * @returns the error
 * @throws {Error} when it resolves or the code differs
 */
export async function assertRejects(p: Promise<unknown>, code?: string): Promise<Error> {
  try {
    await p;
  } catch (err) {
    if (code !== undefined) assertEquals((err as { code?: string }).code, code, "error code");
    return err as Error;
  }
  throw new Error("expected a rejection, the promise resolved");
}

/**
 * Deep equality of two values (see the module documentation).
 *
 * @param a one value
 * @param b the other
 * @returns whether they are equal
 */
export function equal(a: unknown, b: unknown): boolean {
  return eq(a, b, new Map());
}

type Seen = Map<object, Set<object>>;

function eq(a: unknown, b: unknown, seen: Seen): boolean {
  if (a === b) return true;
  if (typeof a === "number" && typeof b === "number") return Number.isNaN(a) && Number.isNaN(b);
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  // A pair met again while comparing it is equal so far (cycles).
  const pairs = seen.get(a) ?? new Set<object>();
  if (pairs.has(b)) return true;
  seen.set(a, pairs.add(b));
  const kind = kindOf(a);
  if (kind !== kindOf(b)) return false;
  switch (kind) {
    case "array":
      return eqArrays(a as unknown[], b as unknown[], seen);
    case "map":
      return eqMaps(a as Map<unknown, unknown>, b as Map<unknown, unknown>, seen);
    case "set":
      return eqSets(a as Set<unknown>, b as Set<unknown>, seen);
    case "bytes":
      return eqBytes(a as ArrayBufferView | ArrayBuffer, b as ArrayBufferView | ArrayBuffer);
    case "date":
      return eq((a as Date).getTime(), (b as Date).getTime(), seen);
    case "regexp":
      return String(a) === String(b);
    case "error": {
      const x = a as Error, y = b as Error;
      if (x.name !== y.name || x.message !== y.message) return false;
      return eqRecords(a, b, seen);
    }
    default:
      return eqRecords(a, b, seen);
  }
}

/** The comparison a value gets: typed arrays by element type, everything else by shape. */
function kindOf(v: object): string {
  if (Array.isArray(v)) return "array";
  if (v instanceof Map) return "map";
  if (v instanceof Set) return "set";
  if (v instanceof Date) return "date";
  if (v instanceof RegExp) return "regexp";
  if (v instanceof Error) return "error";
  if (v instanceof ArrayBuffer) return "bytes";
  if (ArrayBuffer.isView(v)) return "bytes";
  return "record";
}

function eqArrays(a: unknown[], b: unknown[], seen: Seen): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!eq(a[i], b[i], seen)) return false;
  return eqRecords(a, b, seen, true);
}

function eqMaps(a: Map<unknown, unknown>, b: Map<unknown, unknown>, seen: Seen): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    if (!b.has(k) || !eq(v, b.get(k), seen)) return false;
  }
  return true;
}

function eqSets(a: Set<unknown>, b: Set<unknown>, seen: Seen): boolean {
  if (a.size !== b.size) return false;
  const rest = [...b].filter((x) => !a.has(x));
  for (const x of a) {
    if (b.has(x)) continue;
    if (typeof x !== "object" || x === null) return false;
    const i = rest.findIndex((y) => eq(x, y, seen));
    if (i < 0) return false;
    rest.splice(i, 1);
  }
  return true;
}

function bytesOf(v: ArrayBufferView | ArrayBuffer): Uint8Array {
  return v instanceof ArrayBuffer
    ? new Uint8Array(v)
    : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function eqBytes(a: ArrayBufferView | ArrayBuffer, b: ArrayBufferView | ArrayBuffer): boolean {
  if (Object.prototype.toString.call(a) !== Object.prototype.toString.call(b)) return false;
  if (a instanceof Float32Array || a instanceof Float64Array) {
    const x = a as Float64Array, y = b as Float64Array;
    if (x.length !== y.length) return false;
    return x.every((v, i) => v === y[i] || (Number.isNaN(v) && Number.isNaN(y[i])));
  }
  const x = bytesOf(a), y = bytesOf(b);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Own enumerable string keys whose value is not undefined (array indices skipped). */
function definedKeys(v: object, skipIndices: boolean): string[] {
  const r = v as Record<string, unknown>;
  return Object.keys(v).filter((k) =>
    r[k] !== undefined && !(skipIndices && /^(0|[1-9]\d*)$/.test(k))
  );
}

function eqRecords(a: object, b: object, seen: Seen, skipIndices = false): boolean {
  const ka = definedKeys(a, skipIndices), kb = definedKeys(b, skipIndices);
  if (ka.length !== kb.length) return false;
  const x = a as Record<string, unknown>, y = b as Record<string, unknown>;
  for (const k of ka) {
    if (!Object.hasOwn(b, k) || !eq(x[k], y[k], seen)) return false;
  }
  return true;
}

/**
 * A value as one line for a failure message: JSON where JSON can say it, and readable
 * forms for what it cannot (maps, sets, bytes, NaN, undefined, bigint).
 *
 * @param v the value
 * @returns the text
 */
export function show(v: unknown): string {
  const seen = new Set<object>();
  const text = JSON.stringify(v, function (this: unknown, k, x) {
    // JSON.stringify has already called toJSON (a Date is a string here); read the raw.
    const raw = k === "" ? v : (this as Record<string, unknown>)[k];
    if (raw === undefined) return "<undefined>";
    if (typeof raw === "number" && !Number.isFinite(raw)) return `<${raw}>`;
    if (typeof raw === "bigint") return `<${raw}n>`;
    if (typeof raw !== "object" || raw === null) return x;
    if (seen.has(raw)) return "<seen above>";
    seen.add(raw);
    if (raw instanceof Map) return { "<Map>": [...raw] };
    if (raw instanceof Set) return { "<Set>": [...raw] };
    if (raw instanceof Error) return { "<Error>": `${raw.name}: ${raw.message}`, ...raw };
    if (raw instanceof ArrayBuffer || ArrayBuffer.isView(raw)) {
      const tag = Object.prototype.toString.call(raw).slice(8, -1);
      const bytes = bytesOf(raw as ArrayBufferView);
      const head = Array.from(bytes.subarray(0, 32), (b) => b.toString(16).padStart(2, "0"));
      return `<${tag} ${bytes.length} B ${head.join("")}${bytes.length > 32 ? "…" : ""}>`;
    }
    return x;
  });
  return text ?? String(v);
}
