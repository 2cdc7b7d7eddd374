import { keepAliveAction } from "./keepalive.ts";
import { assertEquals } from "./_testing.ts";

Deno.test("keepAliveAction() pings a quiet connection and declares a silent one dead", () => {
  const timings = { pingIntervalMs: 1000, deadAfterMs: 2500 };
  const cases: Array<[number, string]> = [
    [0, "none"],
    [999, "none"],
    [1000, "ping"],
    [2500, "ping"],
    [2501, "dead"],
  ];
  for (const [quietMs, want] of cases) {
    assertEquals(keepAliveAction(quietMs, timings), want, `quiet ${quietMs} ms`);
  }
});
