import { escapeLogText, LogThrottle } from "./log.ts";
import { assertEquals } from "../tests/_assert.ts";

Deno.test("escapeLogText escapes line breaks, controls, bidi overrides and lone surrogates", () => {
  assertEquals(escapeLogText("a\nb\r\tc"), "a\\nb\\r\\tc", "short escapes");
  assertEquals(escapeLogText("\x00\x1b[2J\x7f\x85"), "\\x00\\x1b[2J\\x7f\\x85", "C0, DEL, C1");
  assertEquals(
    escapeLogText("\u2028\u2029\u202e\u2066"),
    "\\u2028\\u2029\\u202e\\u2066",
    "Unicode",
  );
  assertEquals(escapeLogText("x\ud800y\udc00"), "x\\ud800y\\udc00", "lone surrogates");
  assertEquals(
    escapeLogText("ok é 😀 \\n"),
    "ok é 😀 \\n",
    "printable text, pairs and backslashes kept",
  );
});

Deno.test("LogThrottle writes N lines per window, then one summary of the rest", async () => {
  const lines: string[] = [];
  const t = new LogThrottle({
    sink: (l) => lines.push(l),
    what: "refused connections",
    linesPerWindow: 3,
    windowMs: 100,
  });
  for (let i = 0; i < 1000; i++) t.log(`refused ${i}`);
  assertEquals(lines, ["refused 0", "refused 1", "refused 2"], "first window");
  await new Promise((r) => setTimeout(r, 250));
  assertEquals(lines.at(-1), "… and 997 more refused connections in the last 0.1 s", "summary");
  t.log("refused again");
  assertEquals(lines.at(-1), "refused again", "a new window");
  t.count(5);
  t.close();
  assertEquals(lines.at(-1), "… and 5 more refused connections in the last 0.1 s", "on close");
  t.log("after close");
  assertEquals(lines.length, 6, "nothing after close");
});
