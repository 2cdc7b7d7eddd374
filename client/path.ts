/**
 * Anchor paths: `/X…/a/b`, empty components ignored, `...` meaning "every descendant".
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";
import { checkNewPath } from "../net/names.ts";

/** A parsed `ls` pattern. */
export interface Glob {
  /** Path components. */
  path: string[];
  /** Whether it ended in `/...`. */
  recursive: boolean;
}

/**
 * Split a path into components, ignoring empty ones (`//X…//a/` is `/X…/a`).
 *
 * @example Empty components vanish
 * ```ts
 * splitPath("//X317c2314a386a9db//hi/"); // ["X317c2314a386a9db", "hi"]
 * ```
 *
 * @param path an absolute or relative path
 * @returns the components
 */
export function splitPath(path: string): string[] {
  return path.split("/").filter((p) => p.length > 0);
}

/**
 * Parse an `ls` pattern.
 *
 * @example A trailing `...` means every descendant
 * ```ts
 * parseGlob("/X317c2314a386a9db/..."); // { path: ["X317c2314a386a9db"], recursive: true }
 * ```
 *
 * @param pattern e.g. `/`, `/X…`, `/X…/...`, `/...`
 * @returns components and recursion
 */
export function parseGlob(pattern: string): Glob {
  const path = splitPath(pattern);
  if (path.at(-1) === "...") return { path: path.slice(0, -1), recursive: true };
  return { path, recursive: false };
}

/**
 * Join components into an absolute path.
 *
 * @example
 * ```ts
 * joinPath(["X317c2314a386a9db", "hi"]); // "/X317c2314a386a9db/hi"
 * ```
 *
 * @param components the components
 * @returns `/a/b`, or `/` for none
 */
export function joinPath(components: string[]): string {
  return "/" + components.join("/");
}

/**
 * Check an element path before asking a server to make it: below a server, and within
 * the rules every server enforces (at most `MAX_PATH_DEPTH` names of at most
 * `MAX_NAME_BYTES` bytes below the server, no `...`, no control characters or lone
 * surrogates; see `net/names.ts`). The server checks again.
 *
 * @param components the components
 * @throws {CircuitError} `bad request` otherwise
 */
export function checkElementPath(components: string[]): void {
  if (components.length === 0) {
    throw new CircuitError("bad request", "cannot create elements outside of servers");
  }
  checkNewPath(joinPath(components), components.slice(1));
}

/**
 * Order paths by name, component by component, parents before children.
 *
 * @example Sort a listing the way `ls` prints it
 * ```ts
 * ["/X1/a/b", "/X1/a", "/X0"].sort(comparePaths); // ["/X0", "/X1/a", "/X1/a/b"]
 * ```
 *
 * @param a a path
 * @param b a path
 * @returns negative, zero or positive
 */
export function comparePaths(a: string, b: string): number {
  const x = splitPath(a), y = splitPath(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return x.length - y.length;
}
