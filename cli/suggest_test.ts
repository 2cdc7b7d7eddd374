import { editDistance, suggest } from "./suggest.ts";
import { assertEquals } from "../tests/_assert.ts";

Deno.test("editDistance() counts insertions, deletions, substitutions and swaps", () => {
  assertEquals(editDistance("", ""), 0);
  assertEquals(editDistance("hmac", "hmac"), 0);
  assertEquals(editDistance("hmca", "hmac"), 1);
  assertEquals(editDistance("ls", "lss"), 1);
  assertEquals(editDistance("wiat", "wait"), 1);
  assertEquals(editDistance("kitten", "sitting"), 3);
  assertEquals(editDistance("", "abc"), 3);
});

Deno.test("suggest() offers the nearest name within two edits, or a unique prefix", () => {
  const commands = ["ls", "peek", "wait", "waitall", "mkproc", "mkchan", "scrub", "stdout"];
  assertEquals(suggest("wiat", commands), "wait");
  assertEquals(suggest("mkprco", commands), "mkproc");
  assertEquals(suggest("peak", commands), "peek");
  assertEquals(suggest("stdou", commands), "stdout");
  assertEquals(suggest("scr", commands), "scrub");
  assertEquals(suggest("frobnicate", commands), undefined);
  assertEquals(suggest("mk", commands), undefined); // a prefix of two: no guess
  assertEquals(suggest("x", ["ls"]), undefined); // not everything is one edit from a short name
  assertEquals(suggest("hmca", ["dial", "discover", "hmac", "timeout"]), "hmac");
  assertEquals(suggest("bogus", ["dial", "long", "depth"]), undefined);
});
