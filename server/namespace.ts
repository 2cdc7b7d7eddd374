/**
 * The anchor tree of one server. An anchor holds at most one element and any number of
 * children; anchors without both disappear.
 *
 * Key holders are trusted to run commands, not to take the server down: names, paths and
 * the number of anchors are bounded (`MAX_NAME_BYTES`, `MAX_PATH_DEPTH` and
 * `MAX_PATH_BYTES` in `net/names.ts`, {@linkcode MAX_ANCHORS} in `server/config.ts`), and
 * every walk of the tree is a loop with its own stack, never a recursion.
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";
import type { Element } from "../elements/element.ts";
import type { LsEntry } from "../net/wire/mod.ts";
import { checkNewPath, printable } from "../net/names.ts";
import { MAX_ANCHORS } from "./config.ts";

/** Kind shown by `ls -l` for an anchor without an element. */
export const NO_ELEMENT = "·";

class Anchor {
  children = new Map<string, Anchor>();
  element: Element | null = null;
  /** Set while an element is being made, so a second make is refused. */
  reserved = false;
}

/** The anchors below one server's root. */
export class Namespace {
  #root = new Anchor();
  #serverName: string;
  #count = 0;
  #maxAnchors: number;

  /**
   * An empty tree below the server's element.
   *
   * @param serverName `X` + the server id
   * @param serverElement the element at the root
   * @param options `maxAnchors`: most anchors held (default {@linkcode MAX_ANCHORS})
   */
  constructor(
    serverName: string,
    serverElement: Element,
    options: { maxAnchors?: number } = {},
  ) {
    this.#serverName = serverName;
    this.#root.element = serverElement;
    this.#maxAnchors = options.maxAnchors ?? MAX_ANCHORS;
  }

  /** Anchors held, the server's own not counted. */
  get size(): number {
    return this.#count;
  }

  /**
   * The element at a path below the root (`[]` is the server element).
   *
   * @param rel components after the server name
   * @returns the element, or null
   */
  element(rel: string[]): Element | null {
    return this.#find(rel)?.element ?? null;
  }

  /**
   * Reserve an anchor for a new element; the caller then calls {@linkcode settle}.
   *
   * @param rel components after the server name, at least one
   * @throws {CircuitError} `bad request` on the root, for a bad name or path (see
   *   `checkNewPath` in `net/names.ts`) or when the anchors would pass the limit; `busy` when
   *   the anchor is taken
   */
  reserve(rel: string[]): void {
    if (rel.length === 0) {
      throw new CircuitError("bad request", "cannot create elements on a server anchor");
    }
    const where = ["", this.#serverName, ...rel].join("/");
    checkNewPath(where, rel);
    // Find how far the path exists before adding anything, so a refusal changes nothing.
    let a = this.#root;
    let depth = 0;
    for (; depth < rel.length; depth++) {
      const next = a.children.get(rel[depth]);
      if (!next) break;
      a = next;
    }
    const added = rel.length - depth;
    if (added === 0 && (a.element || a.reserved)) {
      throw new CircuitError("busy", "anchor already has an element");
    }
    if (this.#count + added > this.#maxAnchors) {
      throw new CircuitError(
        "bad request",
        `Making "${printable(where, 200)}" failed: this server holds ${this.#count} anchors and ` +
          `allows at most ${this.#maxAnchors}; scrub some first`,
      );
    }
    for (; depth < rel.length; depth++) {
      const next = new Anchor();
      a.children.set(rel[depth], next);
      a = next;
    }
    this.#count += added;
    a.reserved = true;
  }

  /**
   * Finish a reservation: install the element, or free the anchor.
   *
   * @param rel the reserved path
   * @param element the made element, or null when making failed
   */
  settle(rel: string[], element: Element | null): void {
    const a = this.#find(rel);
    if (!a) return;
    a.reserved = false;
    a.element = element;
    if (!element) this.#prune(rel);
  }

  /**
   * Detach the element at a path (it must already be scrubbed) and prune.
   *
   * @param rel components after the server name
   * @param element only detach if it is still this one
   */
  remove(rel: string[], element: Element): void {
    const a = this.#find(rel);
    if (!a || a.element !== element) return;
    a.element = null;
    this.#prune(rel);
  }

  /**
   * List the anchors below a path, sorted by name, parents before children.
   *
   * @param rel components after the server name
   * @param recursive every descendant rather than direct children
   * @returns the entries, with absolute paths
   */
  list(rel: string[], recursive: boolean): LsEntry[] {
    return [...this.walk(rel, recursive)];
  }

  /**
   * The entries of {@linkcode list}, one at a time: a loop with its own stack, which
   * sorts each anchor's children when it reaches it, so a listing of any size or depth
   * costs memory only for the anchors on the current path. Anchors removed while the
   * walk is paused are skipped; anchors added may or may not be seen.
   *
   * @param rel components after the server name
   * @param recursive every descendant rather than direct children
   * @yields the entries, with absolute paths
   */
  *walk(rel: string[], recursive: boolean): Generator<LsEntry> {
    const start = this.#find(rel);
    if (!start) return;
    const stack: Array<{ a: Anchor; prefix: string; names: string[]; i: number }> = [{
      a: start,
      prefix: ["", this.#serverName, ...rel].join("/"),
      names: [...start.children.keys()].sort(compareNames),
      i: 0,
    }];
    while (stack.length) {
      const top = stack[stack.length - 1];
      if (top.i >= top.names.length) {
        stack.pop();
        continue;
      }
      const name = top.names[top.i++];
      const child = top.a.children.get(name);
      if (!child || (!child.element && child.children.size === 0)) continue;
      const path = `${top.prefix}/${name}`;
      yield { path, kind: child.element?.kind ?? NO_ELEMENT };
      if (recursive && child.children.size) {
        stack.push({
          a: child,
          prefix: path,
          names: [...child.children.keys()].sort(compareNames),
          i: 0,
        });
      }
    }
  }

  /**
   * Every element below the root, deepest first (for shutdown).
   *
   * @returns pairs of relative path and element
   */
  elements(): Array<[string[], Element]> {
    const out: Array<[string[], Element]> = [];
    // Post-order without recursion: an anchor's element is taken once its children are.
    const stack: Array<{ a: Anchor; rel: string[]; kids: Iterator<[string, Anchor]> }> = [{
      a: this.#root,
      rel: [],
      kids: this.#root.children.entries(),
    }];
    while (stack.length) {
      const top = stack[stack.length - 1];
      const next = top.kids.next();
      if (!next.done) {
        const [name, child] = next.value;
        stack.push({ a: child, rel: [...top.rel, name], kids: child.children.entries() });
        continue;
      }
      stack.pop();
      if (top.a.element && top.rel.length) out.push([top.rel, top.a.element]);
    }
    return out;
  }

  #find(rel: readonly string[]): Anchor | undefined {
    let a: Anchor | undefined = this.#root;
    for (const name of rel) {
      a = a.children.get(name);
      if (!a) return undefined;
    }
    return a;
  }

  #prune(rel: string[]): void {
    const chain: Anchor[] = [this.#root];
    for (const name of rel) {
      const next = chain[chain.length - 1].children.get(name);
      if (!next) return;
      chain.push(next);
    }
    for (let i = rel.length; i > 0; i--) {
      const a = chain[i];
      if (a.element || a.reserved || a.children.size) return;
      chain[i - 1].children.delete(rel[i - 1]);
      this.#count--;
    }
  }
}

/**
 * Byte-wise name order (Go's `sort.Strings`), independent of locale.
 *
 * @param a a name
 * @param b a name
 * @returns negative, zero or positive
 */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
