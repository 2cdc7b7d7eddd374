/**
 * Bodies of the channel and subscription commands: parse → call the library → print.
 *
 * @module
 */

import type { Client, Incoming } from "../mod.ts";
import { receive } from "../client/_recv.ts";
import { type Parsed, UsageError } from "./args.ts";
import { withSession } from "./session.ts";
import type { Runner } from "./commands.ts";

function args(p: Parsed, n: number, usage: string): string[] {
  const a = p.positionals.slice(1);
  if (a.length !== n) throw new UsageError(`usage: circuit ${p.positionals[0]} ${usage}`);
  return a;
}

function run(
  p: Parsed,
  fn: (c: Client, timeoutMs: number | undefined) => Promise<void>,
): Promise<number> {
  return withSession(p, (s) => fn(s.client, s.timeoutMs));
}

function writeOut(b: Uint8Array): void {
  let off = 0;
  while (off < b.length) off += Deno.stdout.writeSync(b.subarray(off));
}

/** Stream one message to stdout; it is consumed only once all of it is out. */
async function printIncoming(m: Incoming): Promise<unknown> {
  try {
    for await (const chunk of m.readable) writeOut(chunk);
  } catch (err) {
    await m.done; // the server's reason (channel closed, …) beats the stream's
    throw err;
  }
  return await m.done;
}

/** The channel and subscription commands, by name. */
export const CHAN_COMMANDS: Record<string, Runner> = {
  mkchan: (p) =>
    run(p, async (c, timeoutMs) => {
      const [path, cap] = args(p, 2, "ANCHOR CAP");
      if (!/^\d+$/.test(cap)) {
        throw new UsageError(`channel capacity must be a non-negative integer, got "${cap}"`);
      }
      await c.walk(path).makeChan(Number(cap), { timeoutMs });
    }),
  send: (p) =>
    run(p, async (c, timeoutMs) => {
      const [path] = args(p, 1, "CHAN");
      await c.walk(path).chan().send(Deno.stdin.readable, { timeoutMs: timeoutMs ?? 0 });
    }),
  recv: (p) =>
    run(p, async (c, timeoutMs) => {
      const [path] = args(p, 1, "CHAN|SUBSCRIPTION");
      const reply = await printIncoming(receive(c.walk(path), { timeoutMs: timeoutMs ?? 0 }));
      const dropped = Number((reply as { Dropped?: number } | null)?.Dropped ?? 0);
      if (dropped > 0) {
        const note = `circuit: ${dropped} events were dropped before this one (queue full)\n`;
        Deno.stderr.writeSync(new TextEncoder().encode(note));
      }
    }),
  close: (p) =>
    run(p, async (c, timeoutMs) => {
      const [path] = args(p, 1, "CHAN");
      await c.walk(path).chan().close({ timeoutMs });
    }),
  "mk@join": (p) =>
    run(p, async (c, timeoutMs) => {
      const [path] = args(p, 1, "ANCHOR");
      await c.walk(path).makeOnJoin({ timeoutMs });
    }),
  "mk@leave": (p) =>
    run(p, async (c, timeoutMs) => {
      const [path] = args(p, 1, "ANCHOR");
      await c.walk(path).makeOnLeave({ timeoutMs });
    }),
};
