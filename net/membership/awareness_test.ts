import { assertEquals } from "./_testing.ts";
import { Awareness, probeAwarenessDelta } from "./awareness.ts";

Deno.test("Awareness scales timeouts by score + 1 and stays within [0, max − 1]", () => {
  const a = new Awareness(4);
  assertEquals(a.score, 0);
  assertEquals(a.scale(500), 500);
  assertEquals(a.apply(-1), 0, "never below healthy");
  assertEquals(a.apply(2), 2);
  assertEquals(a.scale(500), 1500);
  assertEquals(a.apply(10), 3, "never above max − 1");
  assertEquals(a.scale(100), 400);
  assertEquals(a.apply(-1), 2, "successful probes bring it back");
});

Deno.test("probeAwarenessDelta() rewards acks and blames missing nacks on ourselves", () => {
  // [acked, expectedNacks, nacks, delta]
  const table: [boolean, number, number, number][] = [
    [true, 0, 0, -1], // direct ack
    [true, 3, 1, -1], // indirect ack
    [false, 0, 0, 1], // failed, nobody to ask: a simple penalty
    [false, 3, 3, 0], // every helper answered: the target is at fault, not us
    [false, 3, 1, 2], // two helpers silent: probably us
    [false, 3, 0, 3],
  ];
  for (const [acked, expectedNacks, nacks, delta] of table) {
    assertEquals(
      probeAwarenessDelta({ acked, expectedNacks, nacks }),
      delta,
      `acked=${acked} ${nacks}/${expectedNacks}`,
    );
  }
});
