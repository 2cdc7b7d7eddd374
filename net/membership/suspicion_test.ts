import { ManualClock } from "../clock.ts";
import { assert, assertEquals } from "./_testing.ts";
import { DEFAULT_MEMBERSHIP_CONFIG } from "./config.ts";
import { remainingSuspicionMs, Suspicion, suspicionBounds, Suspicions } from "./suspicion.ts";

Deno.test("remainingSuspicionMs() shrinks from max to min as confirmations arrive", () => {
  const bounds = { minMs: 2000, maxMs: 30_000, k: 3 };
  // [confirmations, elapsedMs, remaining]
  const table: [number, number, number][] = [
    [0, 0, 30_000], // nobody confirms: the maximum
    [1, 0, 16_000], // log(2)/log(4) = 1/2 of the way down
    [2, 0, 7810], // log(3)/log(4) ≈ 0.79 of the way down, floored
    [3, 0, 2000], // k confirmations: the minimum
    [4, 0, 2000], // more than k: never below the minimum
    [1, 5000, 11_000], // elapsed time counts against the total
    [3, 1500, 500],
    [0, 40_000, -10_000], // overdue: negative, fire now
  ];
  for (const [n, elapsed, want] of table) {
    assertEquals(remainingSuspicionMs(n, elapsed, bounds), want, `n=${n} elapsed=${elapsed}`);
  }
});

Deno.test("remainingSuspicionMs() is the minimum when no confirmation is expected", () => {
  assertEquals(remainingSuspicionMs(0, 0, { minMs: 500, maxMs: 3000, k: 0 }), 500);
  assertEquals(remainingSuspicionMs(0, 200, { minMs: 500, maxMs: 3000, k: 0 }), 300);
});

Deno.test("suspicionBounds() follows suspicionMult × max(1, log10(n)) × probeIntervalMs", () => {
  const c = DEFAULT_MEMBERSHIP_CONFIG; // mult 3, 2 confirmations, max mult 6, interval 500
  // [n, minMs, maxMs, k]
  const table: [number, number, number, number][] = [
    [1, 1500, 9000, 0], // alone: nobody could confirm
    [3, 1500, 9000, 0], // one other member: fewer than k = 2 could confirm
    [4, 1500, 9000, 2],
    [10, 1500, 9000, 2],
    [100, 3000, 18_000, 2], // log10(100) = 2
    [1000, 4500, 27_000, 2],
  ];
  for (const [n, minMs, maxMs, k] of table) {
    assertEquals(suspicionBounds(c, n), { minMs, maxMs, k }, `n=${n}`);
  }
});

Deno.test("Suspicion fires at the maximum without confirmations", async () => {
  const clock = new ManualClock();
  const fired: number[] = [];
  new Suspicion({
    from: "a",
    bounds: { minMs: 100, maxMs: 1000, k: 2 },
    clock,
    onTimeout: (n) => fired.push(n),
  });
  await clock.advance(999);
  assertEquals(fired, []);
  await clock.advance(1);
  assertEquals(fired, [0]);
  assertEquals(clock.pending, 0);
});

Deno.test("Suspicion.confirm() accelerates once per independent member", async () => {
  const clock = new ManualClock();
  const fired: number[] = [];
  const s = new Suspicion({
    from: "a",
    bounds: { minMs: 100, maxMs: 1000, k: 2 },
    clock,
    onTimeout: (n) => fired.push(n),
  });
  assert(!s.confirm("a"), "the accuser's own gossip is not a confirmation");
  assert(s.confirm("b"));
  assert(!s.confirm("b"), "a duplicate is not a confirmation");
  assertEquals(s.confirmations, 1);
  // 1 of 2: log(2)/log(3) ≈ 0.63 of the way from 1000 to 100 → 432 ms in total.
  await clock.advance(431);
  assertEquals(fired, []);
  await clock.advance(1);
  assertEquals(fired, [1]);
  assert(!s.confirm("c"), "a finished suspicion takes no confirmation");
});

Deno.test("Suspicion.confirm() fires at once when the shortened timeout has passed", async () => {
  const clock = new ManualClock();
  const fired: number[] = [];
  const s = new Suspicion({
    from: "a",
    bounds: { minMs: 100, maxMs: 1000, k: 1 },
    clock,
    onTimeout: (n) => fired.push(n),
  });
  await clock.advance(500);
  assert(s.confirm("b"));
  assert(!s.confirm("c"), "k confirmations reached: no more");
  await clock.advance(0);
  assertEquals(fired, [1]);
});

Deno.test("Suspicion.cancel() stops the timer", async () => {
  const clock = new ManualClock();
  let fired = false;
  const s = new Suspicion({
    from: "a",
    bounds: { minMs: 100, maxMs: 1000, k: 2 },
    clock,
    onTimeout: () => fired = true,
  });
  s.cancel();
  await clock.advance(5000);
  assert(!fired);
  assertEquals(clock.pending, 0);
});

Deno.test("Suspicion starts at the minimum when no confirmation is expected", async () => {
  const clock = new ManualClock();
  let fired = false;
  new Suspicion({
    from: "a",
    bounds: { minMs: 100, maxMs: 1000, k: 0 },
    clock,
    onTimeout: () => fired = true,
  });
  await clock.advance(100);
  assert(fired);
});

Deno.test("Suspicions keeps one timer per member, scaled by the health multiplier", async () => {
  const clock = new ManualClock();
  const config = {
    suspicionMult: 4,
    suspicionConfirmations: 2,
    suspicionMaxTimeoutMult: 6,
    probeIntervalMs: 100,
  };
  const dead: string[] = [];
  const s = new Suspicions({ config, clock, healthMultiplier: () => 2 });
  s.start("a", { from: "x", n: 3, onTimeout: () => dead.push("a") }); // k = 0: 2 × 400 ms
  s.start("b", { from: "x", n: 10, onTimeout: () => dead.push("b") }); // k = 2: 2 × 2400 ms
  assert(!s.confirm("a", "y"), "nothing to confirm when k = 0");
  assert(s.confirm("b", "y"));
  assertEquals(s.size, 2);
  await clock.advance(800);
  assertEquals(dead, ["a"]);
  s.end("b");
  await clock.advance(10_000);
  assertEquals([dead, s.size, clock.pending], [["a"], 0, 0]);
});
