import { assertEquals } from "../../tests/_assert.ts";
import { ringUpdateDelayMs, watchRing } from "./ring.ts";

Deno.test("watchRing() picks the next members after self in id order, wrapping around", () => {
  const ids = ["1", "2", "3", "4", "5", "6"];
  const table: Array<[string, number, string[]]> = [
    ["1", 3, ["2", "3", "4"]],
    ["5", 3, ["6", "1", "2"]],
    ["6", 3, ["1", "2", "3"]],
    ["3", 0, []],
    ["3", 1, ["4"]],
    ["2", 10, ["3", "4", "5", "6", "1"]],
  ];
  for (const [self, watched, want] of table) {
    assertEquals(watchRing(ids, self, watched), want, `self ${self}, watched ${watched}`);
  }
});

Deno.test("watchRing() watches nobody when alone, and the other one of two", () => {
  assertEquals(watchRing(["a"], "a", 3), []);
  assertEquals(watchRing(["a", "b"], "a", 3), ["b"]);
  assertEquals(watchRing(["a", "b"], "b", 3), ["a"]);
});

Deno.test("watchRing() gives every member the same number of watchers", () => {
  const ids = Array.from({ length: 25 }, (_, i) => i.toString(16).padStart(2, "0"));
  const watchers = new Map<string, number>();
  for (const self of ids) {
    for (const w of watchRing(ids, self, 3)) watchers.set(w, (watchers.get(w) ?? 0) + 1);
  }
  assertEquals(new Set(watchers.values()), new Set([3]));
  assertEquals(watchers.size, ids.length);
});

Deno.test("ringUpdateDelayMs() waits for quiet, but never past the longest wait", () => {
  const t = { settleMs: 100, maxWaitMs: 1000 };
  const table: Array<[number, number, number]> = [
    // [now, due since, delay]
    [0, 0, 100], // the first change: wait for quiet
    [500, 0, 100], // changes keep coming: still quiet first
    [950, 0, 50], // the longest wait is nearer than quiet
    [1000, 0, 0], // due now
    [1500, 0, 0], // overdue: at once, never negative
  ];
  for (const [nowMs, dueSinceMs, want] of table) {
    assertEquals(ringUpdateDelayMs({ ...t, nowMs, dueSinceMs }), want, `at ${nowMs}`);
  }
});
