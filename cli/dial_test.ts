import { chooseDial, parseDuration } from "./dial.ts";
import { UsageError } from "./args.ts";
import { assert, assertEquals, assertThrows } from "../tests/_assert.ts";

Deno.test("parseDuration() reads Go's duration forms and plain seconds", () => {
  const cases: [string, number][] = [
    ["10", 10_000],
    ["0.5", 500],
    ["250ms", 250],
    ["1.5s", 1500],
    ["1.1s", 1100],
    ["2m", 120_000],
    ["1h", 3_600_000],
    ["1m30s", 90_000],
    ["1h2m3.5s", 3_723_500],
    ["1s500ms", 1500],
    ["300us", 1],
    ["300µs", 1],
    ["1500us", 2],
    ["10ns", 1],
    [".5s", 500],
    [" 10s ", 10_000],
  ];
  for (const [text, ms] of cases) assertEquals(parseDuration(text), ms, text);
});

Deno.test("parseDuration() rejects what is not a positive duration, naming the flag", () => {
  for (const bad of ["", "soon", "0", "0s", "-1s", "1x", "s", "1m30", "1.2.3s", "1 s"]) {
    const err = assertThrows(() => parseDuration(bad, "scrub-grace"));
    assert(err instanceof UsageError, bad);
    assertEquals(
      err.message,
      `Parsing --scrub-grace failed: expected a duration like 10s or 1m30s, got "${bad}"`,
    );
  }
});

Deno.test("chooseDial(): $CIRCUIT may hold the URL itself or name a file holding one", () => {
  const url = "circuit://127.0.0.1:7711/42/Q0123456789abcdef";
  const noFile = (path: string): string => {
    throw new Error(`no file ${path}`);
  };
  assertEquals(chooseDial({ circuitFile: url, readFile: noFile }), { url });
  assertEquals(chooseDial({ circuitFile: "/f", readFile: () => `${url}\n` }), { url });
  assertEquals(chooseDial({ dial: "circuit://x:1/1/Q1", circuitFile: url, readFile: noFile }), {
    url: "circuit://x:1/1/Q1",
  });
  const err = assertThrows(() => chooseDial({ circuitFile: "/nope", readFile: noFile }));
  assert(err instanceof UsageError && /Reading \$CIRCUIT file "\/nope" failed/.test(err.message));
});
