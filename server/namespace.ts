/**
 * The anchor tree of one server. An anchor holds at most one element and any number of
 * children; anchors without both disappear.
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";
import type { Element } from "../elements/element.ts";
import type { LsEntry } from "../net/wire.ts";

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

  /**
   * @param serverName `X` + the server id
   * @param serverElement the element at the root
   */
  constructor(serverName: string, serverElement: Element) {
    this.#serverName = serverName;
    this.#root.element = serverElement;
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
   * @throws {CircuitError} `bad request` on the root; `busy` when the anchor is taken
   */
  reserve(rel: string[]): void {
    if (rel.length === 0) {
      throw new CircuitError("bad request", "cannot create elements on a server anchor");
    }
    let a = this.#root;
    for (const name of rel) {
      let next = a.children.get(name);
      if (!next) a.children.set(name, next = new Anchor());
      a = next;
    }
    if (a.element || a.reserved) {
      throw new CircuitError("busy", "anchor already has an element");
    }
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
    const start = this.#find(rel);
    const out: LsEntry[] = [];
    if (!start) return out;
    const walk = (a: Anchor, prefix: string) => {
      for (const name of [...a.children.keys()].sort(compareNames)) {
        const child = a.children.get(name)!;
        if (!child.element && child.children.size === 0) continue;
        const path = `${prefix}/${name}`;
        out.push({ path, kind: child.element?.kind ?? NO_ELEMENT });
        if (recursive) walk(child, path);
      }
    };
    walk(start, ["", this.#serverName, ...rel].join("/"));
    return out;
  }

  /**
   * Every element below the root, deepest first (for shutdown).
   *
   * @returns pairs of relative path and element
   */
  elements(): Array<[string[], Element]> {
    const out: Array<[string[], Element]> = [];
    const walk = (a: Anchor, rel: string[]) => {
      for (const [name, child] of a.children) walk(child, [...rel, name]);
      if (a.element && rel.length) out.push([rel, a.element]);
    };
    walk(this.#root, []);
    return out;
  }

  #find(rel: string[]): Anchor | undefined {
    let a: Anchor | undefined = this.#root;
    for (const name of rel) {
      a = a.children.get(name);
      if (!a) return undefined;
    }
    return a;
  }

  #prune(rel: string[]): void {
    for (let i = rel.length; i > 0; i--) {
      const parent = this.#find(rel.slice(0, i - 1));
      const a = parent?.children.get(rel[i - 1]);
      if (!parent || !a || a.element || a.reserved || a.children.size) return;
      parent.children.delete(rel[i - 1]);
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
