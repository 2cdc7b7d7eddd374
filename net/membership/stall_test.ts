/**
 * A starved member (CPU quota, a loaded host, a GC pause) reads its timers late, and may
 * read them before the datagrams waiting in its socket: it must not turn that into
 * accusations. Timers that fire more than `stallMs` late make a probe inconclusive and
 * re-arm a suspicion instead of ending it in a death.
 */

import { type Clock, ManualClock } from "../clock.ts";
import { assert, assertEquals } from "./_testing.ts";
import { Awareness } from "./awareness.ts";
import { Prober, type ProbeResult } from "./probe.ts";
import { Suspicions } from "./suspicion.ts";

/** A manual clock whose reading can jump ahead of its timers: a process that was starved. */
class StarvedClock implements Clock {
  readonly inner = new ManualClock();
  #lag = 0;
  now(): number {
    return this.inner.now() + this.#lag;
  }
  setTimeout(fn: () => void, ms: number): number {
    return this.inner.setTimeout(fn, ms);
  }
  clearTimeout(handle: number): void {
    this.inner.clearTimeout(handle);
  }
  /** Time passes while no timer runs; the next due timers fire `ms` late. */
  starve(ms: number): void {
    this.#lag += ms;
  }
  advance(ms: number): Promise<void> {
    return this.inner.advance(ms);
  }
}

const TARGET = {
  id: "t",
  addr: { host: "10.0.0.1", port: 7001 },
  incarnation: 3,
  status: "alive" as const,
};

function prober(clock: Clock, awareness: Awareness): Prober {
  return new Prober({
    self: "me",
    config: { probeIntervalMs: 1000, probeTimeoutMs: 500, indirectChecks: 1, stallMs: 250 },
    clock,
    awareness,
    nextSeq: () => 1,
    send: () => {},
    helpers: () => [{ ...TARGET, id: "h", addr: { host: "10.0.0.2", port: 7002 } }],
  });
}

Deno.test("a probe whose wait ended late (we were starved) suspects nobody and slows us down", async () => {
  const clock = new StarvedClock();
  const awareness = new Awareness(8);
  let result: ProbeResult | undefined;
  const done = prober(clock, awareness).probe(TARGET).then((r) => result = r);
  await clock.advance(500);
  clock.starve(2000); // the indirect wait's timer fires two seconds late
  await clock.advance(500);
  await done;
  assertEquals(result?.outcome, "stalled", "outcome");
  assertEquals(awareness.score, 1, "local health worsened");
});

Deno.test("a probe whose timers fire on time still fails", async () => {
  const clock = new StarvedClock();
  const awareness = new Awareness(8);
  let result: ProbeResult | undefined;
  const done = prober(clock, awareness).probe(TARGET).then((r) => result = r);
  await clock.advance(1000);
  await done;
  assertEquals(result?.outcome, "failed");
});

Deno.test("a suspicion that expires late is re-armed, and ends on time after", async () => {
  const clock = new StarvedClock();
  const config = {
    suspicionMult: 4,
    suspicionConfirmations: 2,
    suspicionMaxTimeoutMult: 6,
    probeIntervalMs: 100,
  };
  let stalls = 0;
  const dead: string[] = [];
  const s = new Suspicions({ config, clock, stallMs: 250, onStall: () => stalls++ });
  s.start("a", { from: "x", n: 3, onTimeout: () => dead.push("a") }); // k = 0: 400 ms
  clock.starve(5000);
  await clock.advance(400);
  assertEquals([dead, stalls, s.size], [[], 1, 1], "starved: no death, one stall");
  await clock.advance(399);
  assertEquals(dead, [], "re-armed for the shortest timeout");
  await clock.advance(1);
  assertEquals(dead, ["a"], "ends on time");
  assert(clock.inner.pending === 0, "no timer left");
});
