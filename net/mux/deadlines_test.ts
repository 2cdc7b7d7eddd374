import { DeadlineTimer, expireDue } from "./deadlines.ts";
import { assertEquals } from "./_testing.ts";

Deno.test("expireDue() expires what is due and returns the next deadline", () => {
  const items = new Map([[1, { deadline: 10 }], [3, { deadline: 30 }], [5, { deadline: 20 }], [
    7,
    { deadline: Infinity },
  ]]);
  const expired: number[] = [];
  const next = expireDue(items, 10, (id) => {
    expired.push(id);
    items.delete(id);
  });
  assertEquals(expired, [1]);
  assertEquals(next, 20);
  assertEquals(expireDue(new Map([[1, { deadline: Infinity }]]), 0, () => {}), Infinity);
});

Deno.test("DeadlineTimer fires once for the earliest deadline scheduled", async () => {
  const fired = Promise.withResolvers<number>();
  let count = 0;
  const timer = new DeadlineTimer(() => {
    count++;
    fired.resolve(performance.now());
  });
  const keep = setTimeout(() => {}, 2_000); // the timer is unref'd: hold the event loop
  const t0 = performance.now();
  timer.schedule(t0 + 10_000);
  timer.schedule(t0 + 5); // earlier: re-armed
  timer.schedule(t0 + 1_000); // later: ignored
  const at = await fired.promise;
  assertEquals(count, 1);
  assertEquals(at - t0 < 1_000, true, `fired after ${at - t0} ms`);
  timer.clear();
  clearTimeout(keep);
});
