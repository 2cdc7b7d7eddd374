/**
 * Anchor names: what a path component may be, and how long and deep a path may get.
 * Servers enforce these on every `make` (a key holder may send anything); clients check
 * the same rules early, and escape what they print.
 *
 * @module
 */

import { CircuitError } from "./errors.ts";

/**
 * Most components below the server name in a path an element is made at
 * (`/X…/a/b` has 2). Far deeper than any naming scheme needs; a listing's walk keeps
 * one frame per level.
 */
export const MAX_PATH_DEPTH = 64;

/** Longest name (one path component), in UTF-8 bytes: a file name's limit on Linux. */
export const MAX_NAME_BYTES = 255;

/**
 * Longest path below the server an element is made at, in UTF-8 bytes of its
 * components and the `/` between them: Linux's `PATH_MAX`. Bounds each listed path.
 */
export const MAX_PATH_BYTES = 4096;

const utf8 = new TextEncoder();

function hex4(c: number): string {
  return c.toString(16).toUpperCase().padStart(4, "0");
}

function isControl(c: number): boolean {
  return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

/** Length of the well-formed surrogate pair at `i` (2), or 0 when `s[i]` is not one. */
function pairAt(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c < 0xd800 || c > 0xdbff) return 0;
  const d = s.charCodeAt(i + 1);
  return d >= 0xdc00 && d <= 0xdfff ? 2 : 0;
}

/**
 * Why a name may not be an anchor's name, or null when it may. Refused: the empty name,
 * `...`, `/`, control characters (C0, DEL and C1, ESC and NUL among them, which would
 * reach terminals raw), lone surrogates (not text), more than
 * {@linkcode MAX_NAME_BYTES} bytes. Anything else is allowed, spaces and non-ASCII
 * included.
 *
 * @example
 * ```ts ignore
 * badName("hi");     // null
 * badName("a\x1b"); // "a name may not contain control characters (found U+001B)"
 * ```
 *
 * @param name one path component
 * @returns a sentence, or null
 */
export function badName(name: string): string | null {
  if (name.length === 0) return "a name may not be empty";
  if (name === "...") return `a name may not be "..."`;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x2f) return `a name may not contain "/"`;
    if (isControl(c)) return `a name may not contain control characters (found U+${hex4(c)})`;
    if (pairAt(name, i)) {
      i++;
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      return `a name may not contain a lone surrogate (found U+${hex4(c)})`;
    }
  }
  const n = utf8.encode(name).length;
  if (n > MAX_NAME_BYTES) return `a name may be at most ${MAX_NAME_BYTES} bytes long, not ${n}`;
  return null;
}

/**
 * Check the path of an element about to be made: its depth, its length and every name.
 *
 * @param where the whole path, for the message
 * @param rel the components below the server name
 * @throws {CircuitError} `bad request`, `Making "PATH" failed: WHY`, for the first thing
 *   wrong
 */
export function checkNewPath(where: string, rel: readonly string[]): void {
  const refuse = (why: string): never => {
    throw new CircuitError("bad request", `Making "${printable(where, 200)}" failed: ${why}`);
  };
  if (rel.length > MAX_PATH_DEPTH) {
    refuse(`a path may have at most ${MAX_PATH_DEPTH} names below the server, not ${rel.length}`);
  }
  let bytes = Math.max(0, rel.length - 1);
  for (const name of rel) {
    const why = badName(name);
    if (why) refuse(why);
    bytes += utf8.encode(name).length;
  }
  if (bytes > MAX_PATH_BYTES) {
    refuse(`a path may be at most ${MAX_PATH_BYTES} bytes long below the server, not ${bytes}`);
  }
}

/**
 * Text safe to print on a terminal: control characters and lone surrogates become
 * `\uXXXX`, and long text is cut at `max` characters.
 *
 * @example
 * ```ts ignore
 * printable("a\x1b[2Jb"); // "a\\u001B[2Jb"
 * ```
 *
 * @param s the text (a path, a name a peer sent)
 * @param max most characters kept (default: all)
 * @returns the escaped text
 */
export function printable(s: string, max = Infinity): string {
  let out = "";
  let start = 0;
  const end = Math.min(s.length, max);
  let i = 0;
  for (; i < end; i++) {
    const c = s.charCodeAt(i);
    if (pairAt(s, i)) {
      i++;
      continue;
    }
    if (isControl(c) || (c >= 0xd800 && c <= 0xdfff)) {
      out += s.slice(start, i) + `\\u${hex4(c)}`;
      start = i + 1;
    }
  }
  // i is past the last character kept (a pair at the cut is kept whole).
  out += s.slice(start, i);
  return i < s.length ? out + "…" : out;
}
