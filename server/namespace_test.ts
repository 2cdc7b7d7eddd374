import { Namespace } from "./namespace.ts";
import { CircuitError } from "../net/errors.ts";
import type { Element } from "../elements/element.ts";
import { assertEquals } from "../tests/_assert.ts";

function el(kind = "chan"): Element {
  return { kind, peek: () => null, scrub: () => {}, call: () => Promise.resolve(null) };
}

function make(ns: Namespace, rel: string[]): Element {
  const e = el();
  ns.reserve(rel);
  ns.settle(rel, e);
  return e;
}

function refused(f: () => void): CircuitError {
  try {
    f();
  } catch (err) {
    if (err instanceof CircuitError) return err;
    throw err;
  }
  throw new Error("accepted");
}

Deno.test("the anchor count covers empty anchors, refuses past the limit, frees on prune", () => {
  const ns = new Namespace("X1", el("server"), { maxAnchors: 5 });
  const deep = make(ns, ["a", "b", "c"]);
  assertEquals(ns.size, 3);
  make(ns, ["a", "d"]);
  assertEquals(ns.size, 4);
  const err = refused(() => ns.reserve(["e", "f"]));
  assertEquals(err.code, "bad request");
  assertEquals(ns.size, 4); // a refusal adds nothing
  assertEquals(ns.list([], true).map((e) => e.path), ["/X1/a", "/X1/a/b", "/X1/a/b/c", "/X1/a/d"]);
  make(ns, ["e"]);
  ns.remove(["a", "b", "c"], deep);
  assertEquals(ns.size, 3);
  make(ns, ["e", "f", "g"]);
  assertEquals(ns.size, 5);
  // A failed make frees what it reserved.
  const ns2 = new Namespace("X1", el("server"), { maxAnchors: 5 });
  ns2.reserve(["x", "y"]);
  ns2.settle(["x", "y"], null);
  assertEquals(ns2.size, 0);
});

Deno.test("walks are loops: sorted, parents first, elements deepest first", () => {
  const ns = new Namespace("X1", el("server"));
  const depth = 64;
  const chain = Array(depth).fill("n");
  make(ns, chain);
  make(ns, ["b"]);
  make(ns, ["a", "z"]);
  const all = ns.list([], true).map((e) => e.path);
  assertEquals(all.length, depth + 3);
  assertEquals(all.slice(0, 4), ["/X1/a", "/X1/a/z", "/X1/b", "/X1/n"]);
  assertEquals(ns.list([], false).map((e) => e.kind), ["·", "chan", "·"]);
  const els = ns.elements().map(([rel]) => rel.join("/"));
  assertEquals(els.length, 3);
  assertEquals(els.indexOf("a/z") >= 0 && els.includes("b"), true);
  // A walk paused while anchors go away skips them.
  const it = ns.walk([], true);
  it.next();
  ns.remove(["b"], ns.element(["b"])!);
  assertEquals([...it].some((e) => e.path === "/X1/b"), false);
});
