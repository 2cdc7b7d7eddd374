import { assert, assertEquals } from "../../tests/_assert.ts";
import { Stdio } from "../stdio.ts";
import { MAX_RETIRED, retirement } from "./retire.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether a promise has settled by the next timer turn. */
async function settled(p: Promise<void>): Promise<boolean> {
  let t: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<boolean>((r) => t = setTimeout(r, 0, false));
  try {
    return await Promise.race([p.then(() => true), late]);
  } finally {
    clearTimeout(t);
  }
}

Deno.test("retirement ends after the grace period, not while a reader is attached", async () => {
  const stdio = new Stdio("/X0/p", 1024);
  stdio.out.write(new TextEncoder().encode("hi"));
  stdio.close();
  const reader = stdio.out.reader();
  const until = retirement(stdio, 20);
  assertEquals(await settled(until), false, "not before the grace period");
  await sleep(60);
  assertEquals(await settled(until), false, "not while a reader is attached");
  assertEquals(new TextDecoder().decode((await reader.read())!), "hi");
  reader.close();
  await until;
});

Deno.test("retirement keeps at most MAX_RETIRED: the oldest is released first", async () => {
  const stdio = new Stdio("/X0/p", 16);
  const first = retirement(stdio, 60_000);
  const rest = Array.from({ length: MAX_RETIRED - 1 }, () => retirement(stdio, 60_000));
  assertEquals(await settled(first), false);
  const over = retirement(stdio, 1);
  assert(await settled(first), "the oldest was released");
  assertEquals(await settled(rest[0]), false, "the second oldest stays");
  await sleep(30);
  assert(await settled(over), "the newest ends after its grace period");
  // Release the rest: each new one pushes out the oldest; the new ones end after 1 ms.
  for (let i = 0; i < MAX_RETIRED; i++) void retirement(stdio, 1);
  await sleep(30);
  assert(await settled(rest.at(-1)!));
});
