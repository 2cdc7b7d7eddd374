import { assert, assertEquals } from "../../tests/_assert.ts";
import { ManualClock } from "../../net/clock.ts";
import { CircuitError } from "../../net/errors.ts";
import { Rejoiner } from "./rejoiner.ts";

const SILENT = { debug() {}, info() {}, warn() {}, error() {} } as unknown as ConstructorParameters<
  typeof Rejoiner
>[0]["log"];

function setup() {
  const clock = new ManualClock();
  let inFlight = 0, maxInFlight = 0;
  const dials: string[] = [];
  const rejoiner = new Rejoiner({
    selfId: "self",
    isMember: () => false,
    join: (url) => {
      dials.push(url);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      // Answers after 500 ms that it cannot be reached (not proof of anything).
      return new Promise((_, reject) =>
        clock.setTimeout(() => {
          inFlight--;
          reject(new CircuitError("timeout", "Dialing timed out"));
        }, 500)
      );
    },
    config: {
      rejoinIntervalMs: 2000,
      rejoinForMs: 10 * 60_000,
      maxRejoining: 1024,
      discoverJitterMs: 100,
      redialTimeoutMs: 1000,
    },
    dialTimeoutMs: 1000,
    clock,
    log: SILENT,
  });
  return { clock, rejoiner, dials, maxInFlight: () => maxInFlight };
}

const member = (i: number) => ({
  id: `m${i}`,
  url: `circuit://10.0.0.${i}:7000/1/Q${i}`,
  joined: "",
});

Deno.test("a failed member is re-dialed with backoff for as long as rejoinForMs, not every 2 s", async () => {
  const { clock, rejoiner, dials } = setup();
  rejoiner.failed(member(1));
  await clock.advance(10 * 60_000 + 10_000);
  rejoiner.close();
  // Every 2 s for 10 minutes was 300 dials; doubling from 2 s up to 30 s is about 25.
  assert(dials.length >= 15 && dials.length <= 45, `dials in 10 min: ${dials.length}`);
  const after = dials.length;
  await clock.advance(60_000);
  assertEquals(dials.length, after, "no dial after rejoinForMs");
});

Deno.test("many members failed at once are re-dialed a few at a time", async () => {
  const { clock, rejoiner, dials, maxInFlight } = setup();
  for (let i = 0; i < 60; i++) rejoiner.failed(member(i));
  await clock.advance(2000);
  assert(dials.length <= 8, `dials in the first round: ${dials.length}`);
  await clock.advance(60_000);
  assertEquals(new Set(dials).size, 60, "every member re-dialed within a minute");
  assert(maxInFlight() <= 16, `dials at once: ${maxInFlight()}`);
  rejoiner.close();
});
