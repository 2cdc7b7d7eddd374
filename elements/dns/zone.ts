/**
 * Parsing one resource record in zone-file syntax (RFC 1035 §5.1). Plain functions, no
 * I/O; `record.ts` prints records back.
 *
 * The origin is the root: a relative name `foo` means `foo.`, and `@` means `.`. TTL and
 * class are optional and may come in either order. Comments (`;`) and parentheses are
 * understood, so an SOA may be pasted from a zone file.
 *
 * @module
 */

import { CircuitError } from "../../net/errors.ts";
import {
  RECORD_CLASSES,
  RECORD_TYPES,
  type RecordClass,
  type RecordType,
  type ResourceRecord,
} from "./record.ts";

/** Options of {@linkcode parseRecord}. */
export interface ParseOptions {
  /** TTL of a record written without one, in seconds. @default {3600} */
  defaultTtlSeconds?: number;
}

/** The largest TTL (RFC 2181 §8), in seconds. */
export const MAX_TTL_SECONDS = 2 ** 31 - 1;

interface Token {
  text: string;
  quoted: boolean;
}

function fail(what: string): never {
  throw new CircuitError("bad request", what);
}

/**
 * Split a record into tokens: whitespace-separated, `"…"` quoted with `\` escapes kept,
 * `;` to the end of the line ignored, parentheses ignored when balanced.
 *
 * @param text the record
 * @returns the tokens
 * @throws {CircuitError} `bad request` for an unterminated quote or unbalanced parentheses
 */
export function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let cur = "", quoted = false, inToken = false, depth = 0;
  const flush = () => {
    if (inToken) out.push({ text: cur, quoted });
    cur = "";
    quoted = false;
    inToken = false;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "\\") {
      if (i + 1 >= text.length) fail("a backslash ends the record");
      cur += c + text[++i];
      inToken = true;
    } else if (c === '"') {
      flush();
      const end = closingQuote(text, i + 1);
      out.push({ text: text.slice(i + 1, end), quoted: true });
      i = end;
    } else if (c === ";") {
      flush();
      while (i + 1 < text.length && text[i + 1] !== "\n") i++;
    } else if (c === "(" || c === ")") {
      flush();
      depth += c === "(" ? 1 : -1;
      if (depth < 0) fail('a ")" has no matching "("');
    } else if (/\s/.test(c)) {
      flush();
    } else {
      cur += c;
      inToken = true;
    }
  }
  flush();
  if (depth !== 0) fail('a "(" is never closed');
  return out;
}

function closingQuote(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === '"') return i;
  }
  fail("a quoted string is never closed");
}

/**
 * Make a name absolute against the root and check it.
 *
 * @param raw a name as written: `foo`, `foo.`, `@` or `.`
 * @returns the absolute name, case kept, e.g. `foo.`
 * @throws {CircuitError} `bad request` for empty labels, labels over 63 bytes, names over
 *   255 bytes, or escapes
 */
export function absoluteName(raw: string): string {
  if (raw === "@" || raw === ".") return ".";
  if (raw.includes("\\")) fail(`escapes in names are not supported, got "${raw}"`);
  const name = raw.endsWith(".") ? raw : raw + ".";
  const labels = name.slice(0, -1).split(".");
  let wire = 1;
  for (const label of labels) {
    const bytes = new TextEncoder().encode(label).length;
    if (bytes === 0) fail(`"${raw}" has an empty label`);
    if (bytes > 63) fail(`"${raw}" has a label longer than 63 bytes`);
    wire += bytes + 1;
  }
  if (wire > 255) fail(`"${raw}" is longer than 255 bytes`);
  return name;
}

/**
 * Parse a TTL: seconds, or BIND units (`1h30m`, `2d`, `1w`).
 *
 * @param text the token
 * @returns seconds, or null when the token is not a TTL
 */
export function parseTtl(text: string): number | null {
  let seconds: number;
  if (/^\d+$/.test(text)) {
    seconds = Number(text);
  } else if (/^(\d+[smhdw])+$/i.test(text)) {
    const unit: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
    seconds = 0;
    for (const [, n, u] of text.matchAll(/(\d+)([smhdw])/gi)) {
      seconds += Number(n) * unit[u.toLowerCase()];
    }
  } else {
    return null;
  }
  return seconds;
}

function isClass(text: string): text is RecordClass {
  return (RECORD_CLASSES as readonly string[]).includes(text.toUpperCase());
}

function isType(text: string): text is RecordType {
  return (RECORD_TYPES as readonly string[]).includes(text.toUpperCase());
}

/**
 * Parse one resource record in zone-file syntax.
 *
 * @example
 * ```ts
 * import { parseRecord } from "./zone.ts";
 * import { formatRecord } from "./record.ts";
 * const rr = parseRecord("miek.nl. 3600 IN MX 10 mx.miek.nl.");
 * console.log(formatRecord(rr)); // "miek.nl.\t3600\tIN\tMX\t10 mx.miek.nl."
 * ```
 *
 * @param text `OWNER [TTL] [CLASS] TYPE RDATA` (TTL and class in either order)
 * @param options the default TTL
 * @returns the record
 * @throws {CircuitError} `bad request` naming what does not parse
 */
export function parseRecord(text: string, options: ParseOptions = {}): ResourceRecord {
  try {
    return parseTokens(tokenize(text), options.defaultTtlSeconds ?? 3600);
  } catch (err) {
    if (!(err instanceof CircuitError)) throw err;
    const shown = text.trim().replace(/\s+/g, " ");
    throw new CircuitError("bad request", `Parsing record "${shown}" failed: ${err.message}`);
  }
}

function parseTokens(tokens: Token[], defaultTtl: number): ResourceRecord {
  if (tokens.length === 0) fail("it is empty");
  const [owner, ...rest] = tokens;
  if (owner.quoted) fail(`the owner name is quoted`);
  const name = absoluteName(owner.text);
  let ttl: number | null = null, klass: RecordClass | null = null;
  let i = 0;
  for (; i < rest.length && i < 2 && !rest[i].quoted; i++) {
    const t = rest[i].text;
    const asTtl = parseTtl(t);
    if (asTtl !== null && ttl === null) {
      if (asTtl > MAX_TTL_SECONDS) fail(`TTL ${t} is over ${MAX_TTL_SECONDS}`);
      ttl = asTtl;
    } else if (isClass(t) && klass === null) {
      klass = t.toUpperCase() as RecordClass;
    } else {
      break;
    }
  }
  const typeToken = rest[i];
  if (!typeToken) fail("it has no type");
  const type = typeToken.text.toUpperCase();
  if (typeToken.quoted || !isType(type)) {
    fail(`unknown or unsupported type "${typeToken.text}" (supported: ${RECORD_TYPES.join(", ")})`);
  }
  const rdata = rest.slice(i + 1);
  const base = { name, ttl: ttl ?? defaultTtl, class: klass ?? "IN" };
  return { ...base, ...parseRdata(type, rdata) } as ResourceRecord;
}

function want(type: string, rdata: Token[], fields: string[]): string[] {
  if (rdata.length < fields.length) {
    fail(`${type} needs ${fields.join(" ")}, got ${rdata.length} of ${fields.length} fields`);
  }
  if (rdata.length > fields.length) {
    fail(`unexpected "${rdata[fields.length].text}" after the ${type} data`);
  }
  for (const t of rdata) if (t.quoted) fail(`${type} data is quoted: "${t.text}"`);
  return rdata.map((t) => t.text);
}

function uint(text: string, what: string, max: number): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(n <= max)) fail(`${what} must be an integer from 0 to ${max}, got "${text}"`);
  return n;
}

function seconds(text: string, what: string): number {
  const n = parseTtl(text);
  if (n === null || n > 0xffffffff) fail(`${what} must be a number of seconds, got "${text}"`);
  return n;
}

/**
 * An IPv4 address in dotted-quad form.
 *
 * @param text the token
 * @returns the address, normalised
 * @throws {CircuitError} `bad request` otherwise
 */
export function parseIpv4(text: string): string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  const parts = m?.slice(1).map(Number);
  if (!parts || parts.some((p) => p > 255)) fail(`"${text}" is not an IPv4 address`);
  return parts.join(".");
}

/**
 * An IPv6 address.
 *
 * @param text the token
 * @returns the address in its canonical compressed form (RFC 5952)
 * @throws {CircuitError} `bad request` otherwise
 */
export function parseIpv6(text: string): string {
  if (!text.includes(":") || !/^[0-9a-fA-F:.]+$/.test(text)) {
    fail(`"${text}" is not an IPv6 address`);
  }
  try {
    return new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    fail(`"${text}" is not an IPv6 address`);
  }
}

const ENC = new TextEncoder();

/**
 * The bytes of a quoted or bare string: `\"`, `\\`, `\X` and `\DDD` (decimal) escapes.
 * Longer than a character-string's 255 bytes is fine here: TXT splits it.
 *
 * @param text the token without quotes
 * @returns the bytes
 * @throws {CircuitError} `bad request` for a bad escape
 */
export function characterString(text: string): Uint8Array {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== "\\") {
      // A whole code point: one UTF-16 unit of a surrogate pair alone would not encode.
      const cp = text.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      bytes.push(...ENC.encode(ch));
      i += ch.length - 1;
      continue;
    }
    const ddd = /^\d{3}/.exec(text.slice(i + 1));
    if (ddd) {
      const b = Number(ddd[0]);
      if (b > 255) fail(`escape \\${ddd[0]} is not a byte`);
      bytes.push(b);
      i += 3;
    } else {
      if (i + 1 >= text.length) fail("a backslash ends a string");
      bytes.push(...ENC.encode(text[++i]));
    }
  }
  return new Uint8Array(bytes);
}

/** Bytes as DNS character-strings: pieces of at most 255 bytes (one empty string stays). */
function characterStrings(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length || out.length === 0; at += 255) {
    out.push(bytes.subarray(at, at + 255));
  }
  return out;
}

function parseRdata(type: RecordType, rdata: Token[]): Pick<ResourceRecord, "type" | "data"> {
  switch (type) {
    case "A":
      return { type, data: parseIpv4(want(type, rdata, ["ADDRESS"])[0]) };
    case "AAAA":
      return { type, data: parseIpv6(want(type, rdata, ["ADDRESS"])[0]) };
    case "CNAME":
    case "NS":
    case "PTR":
      return { type, data: absoluteName(want(type, rdata, ["NAME"])[0]) };
    case "MX": {
      const [pref, exchange] = want(type, rdata, ["PREFERENCE", "EXCHANGE"]);
      return {
        type,
        data: { preference: uint(pref, "MX preference", 65535), exchange: absoluteName(exchange) },
      };
    }
    case "SRV": {
      const [p, w, port, target] = want(type, rdata, ["PRIORITY", "WEIGHT", "PORT", "TARGET"]);
      return {
        type,
        data: {
          priority: uint(p, "SRV priority", 65535),
          weight: uint(w, "SRV weight", 65535),
          port: uint(port, "SRV port", 65535),
          target: absoluteName(target),
        },
      };
    }
    case "SOA": {
      const f = want(type, rdata, [
        "MNAME",
        "RNAME",
        "SERIAL",
        "REFRESH",
        "RETRY",
        "EXPIRE",
        "MINIMUM",
      ]);
      return {
        type,
        data: {
          mname: absoluteName(f[0]),
          rname: absoluteName(f[1]),
          serial: uint(f[2], "SOA serial", 0xffffffff),
          refresh: seconds(f[3], "SOA refresh"),
          retry: seconds(f[4], "SOA retry"),
          expire: seconds(f[5], "SOA expire"),
          minimum: seconds(f[6], "SOA minimum"),
        },
      };
    }
    case "TXT": {
      if (rdata.length === 0) fail("TXT needs at least one string");
      // A string over 255 bytes becomes several, as BIND and miekg/dns (which the original
      // used) split it.
      const data = rdata.flatMap((t) => characterStrings(characterString(t.text)));
      const size = data.reduce((n, d) => n + 1 + d.length, 0);
      if (size > 65_535) fail(`TXT data is ${size} bytes, over the 65535 a record can hold`);
      return { type, data };
    }
  }
}
