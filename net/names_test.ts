import { badName, checkNewPath, MAX_NAME_BYTES, MAX_PATH_DEPTH, printable } from "./names.ts";
import { CircuitError } from "./errors.ts";
import { assertEquals } from "../tests/_assert.ts";

Deno.test("badName allows what the contract allows and refuses what breaks terminals", () => {
  for (const ok of ["hi", "é c", "a.b", "..", ".", "😀", "tab-less", "n".repeat(MAX_NAME_BYTES)]) {
    assertEquals(badName(ok), null);
  }
  const bad: Array<[string, RegExp]> = [
    ["", /empty/],
    ["...", /"\.\.\."/],
    ["a/b", /"\/"/],
    ["\x00", /U\+0000/],
    ["a\x1b[2J", /U\+001B/],
    ["\t", /U\+0009/],
    ["\x7f", /U\+007F/],
    ["\x85", /U\+0085/],
    ["\x9f", /U\+009F/],
    ["a\ud800", /lone surrogate \(found U\+D800\)/],
    ["\udc00a", /lone surrogate \(found U\+DC00\)/],
    ["\ud83d\ud83d", /lone surrogate/],
    ["n".repeat(MAX_NAME_BYTES + 1), /at most 255 bytes long, not 256/],
    ["é".repeat(128), /not 256/],
  ];
  for (const [name, re] of bad) {
    const why = badName(name);
    if (!why || !re.test(why)) throw new Error(`${JSON.stringify(name)}: ${why}`);
  }
});

Deno.test("checkNewPath bounds depth and length, and quotes the path escaped and cut", () => {
  checkNewPath("/X/a", Array(MAX_PATH_DEPTH).fill("a"));
  for (const rel of [Array(MAX_PATH_DEPTH + 1).fill("a"), Array(17).fill("p".repeat(250))]) {
    try {
      checkNewPath("/X\x1b" + "/a".repeat(1000), rel);
      throw new Error("accepted");
    } catch (err) {
      if (!(err instanceof CircuitError) || err.code !== "bad request") throw err;
      if (!err.message.startsWith('Making "/X\\u001B/a/a') || err.message.length > 400) {
        throw new Error(err.message);
      }
    }
  }
});

Deno.test("printable escapes control characters and lone surrogates, keeps pairs", () => {
  assertEquals(printable("a\x1b[2Jb\x00"), "a\\u001B[2Jb\\u0000");
  assertEquals(printable("x\ud800y😀\udc00"), "x\\uD800y😀\\uDC00");
  assertEquals(printable("abcdef", 3), "abc…");
  assertEquals(printable("ab😀", 3), "ab😀");
  assertEquals(printable("plain"), "plain");
});
