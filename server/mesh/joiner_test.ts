import { assert, assertEquals } from "../../tests/_assert.ts";
import { ManualClock } from "../../net/clock.ts";
import { CircuitError } from "../../net/errors.ts";
import { Joiner } from "./joiner.ts";

function logger(lines: string[]) {
  const put = (m: string) => lines.push(m);
  return { debug: put, info: put, warn: put, error: put } as unknown as ConstructorParameters<
    typeof Joiner
  >[0]["log"];
}

Deno.test("a joiner retries a busy seed with backoff until it answers, logging the failure once", async () => {
  const clock = new ManualClock();
  const lines: string[] = [];
  const attempts: number[] = [];
  let answer = false;
  const joiner = new Joiner({
    seeds: ["10.0.0.1:7000"],
    join: () => {
      attempts.push(clock.now());
      return answer ? Promise.resolve() : Promise.reject(new CircuitError("timeout", "busy"));
    },
    attemptTimeoutMs: 1000,
    clock,
    log: logger(lines),
  });
  assertEquals(await joiner.firstRound, false, "first round");
  await clock.advance(60_000);
  assert(attempts.length >= 4 && attempts.length <= 10, `attempts in 60 s: ${attempts.length}`);
  answer = true;
  await clock.advance(60_000);
  assertEquals(await joiner.done, true, "joined");
  const n = attempts.length;
  await clock.advance(120_000);
  assertEquals(attempts.length, n, "no attempt once joined");
  assertEquals(lines.filter((l) => /failed/.test(l)).length, 1, `failure lines: ${lines}`);
  assertEquals(lines.filter((l) => /joined through/.test(l)).length, 1, `lines: ${lines}`);
});

Deno.test("a joiner stops when every seed refuses for good, and when closed", async () => {
  const clock = new ManualClock();
  const refused = new Joiner({
    seeds: ["a", "b"],
    join: () => Promise.reject(new CircuitError("auth", "key mismatch")),
    attemptTimeoutMs: 1000,
    clock,
    log: logger([]),
    permanent: (err) => (err as CircuitError).code === "auth",
  });
  assertEquals(await refused.done, false);
  assertEquals((refused.error as Error).message, "key mismatch");
  const closed = new Joiner({
    seeds: ["a"],
    join: () => Promise.reject(new CircuitError("timeout", "busy")),
    attemptTimeoutMs: 1000,
    clock,
    log: logger([]),
  });
  await closed.firstRound;
  closed.close();
  assertEquals(await closed.done, false);
  assertEquals(clock.pending, 0, "no timer left");
});
