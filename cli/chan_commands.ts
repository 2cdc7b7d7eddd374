/**
 * Bodies of the channel and subscription commands: parse → call the library → print.
 *
 * @module
 */

import type { Incoming } from "../mod.ts";
import { receive } from "../client/_recv.ts";
import { UsageError } from "./args.ts";
import { positionals, withClient, writeOut } from "./session.ts";
import type { Runner } from "./commands.ts";

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
    withClient(p, async (c, timeoutMs) => {
      const [path, cap] = positionals(p, 2, 2, "ANCHOR CAP");
      if (!/^\d+$/.test(cap) || !Number.isSafeInteger(Number(cap))) {
        throw new UsageError(`channel capacity must be a non-negative integer, got "${cap}"`);
      }
      await c.walk(path).makeChan(Number(cap), { timeoutMs });
    }),
  send: (p) =>
    withClient(p, async (c, timeoutMs) => {
      const [path] = positionals(p, 1, 1, "CHAN");
      await c.walk(path).chan().send(Deno.stdin.readable, { timeoutMs: timeoutMs ?? 0 });
    }),
  recv: (p) =>
    withClient(p, async (c, timeoutMs) => {
      const [path] = positionals(p, 1, 1, "CHAN|SUBSCRIPTION");
      const reply = await printIncoming(receive(c.walk(path), { timeoutMs: timeoutMs ?? 0 }));
      const dropped = Number((reply as { Dropped?: number } | null)?.Dropped ?? 0);
      if (dropped > 0) {
        const note = `circuit: ${dropped} events were dropped before this one (queue full)\n`;
        Deno.stderr.writeSync(new TextEncoder().encode(note));
      }
    }),
  close: (p) =>
    withClient(p, async (c, timeoutMs) => {
      const [path] = positionals(p, 1, 1, "CHAN");
      await c.walk(path).chan().close({ timeoutMs });
    }),
  "mk@join": (p) =>
    withClient(p, async (c, timeoutMs) => {
      const [path] = positionals(p, 1, 1, "ANCHOR");
      await c.walk(path).makeOnJoin({ timeoutMs });
    }),
  "mk@leave": (p) =>
    withClient(p, async (c, timeoutMs) => {
      const [path] = positionals(p, 1, 1, "ANCHOR");
      await c.walk(path).makeOnLeave({ timeoutMs });
    }),
};
