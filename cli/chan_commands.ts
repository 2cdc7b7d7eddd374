/**
 * Bodies of the channel and subscription commands: arguments → call the library → print.
 *
 * @module
 */

import { type Incoming, recvStream } from "../mod.ts";
import { UsageError } from "./args.ts";
import type { ClientBody } from "./command.ts";
import { writeOut } from "./session.ts";

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
export const CHAN_COMMANDS: Record<string, ClientBody> = {
  mkchan: ([path, cap]) => {
    if (!/^\d+$/.test(cap) || !Number.isSafeInteger(Number(cap))) {
      throw new UsageError(`channel capacity must be a non-negative integer, got "${cap}"`);
    }
    return async ({ client, timeoutMs }) => {
      await client.walk(path).makeChan(Number(cap), { timeoutMs });
    };
  },
  send: ([path]) => async ({ client, timeoutMs }) => {
    await client.walk(path).chan().send(Deno.stdin.readable, { timeoutMs: timeoutMs ?? 0 });
  },
  recv: ([path]) => async ({ client, timeoutMs }) => {
    const reply = await printIncoming(recvStream(client.walk(path), { timeoutMs: timeoutMs ?? 0 }));
    const dropped = Number((reply as { Dropped?: number } | null)?.Dropped ?? 0);
    if (dropped > 0) {
      const note = `circuit: ${dropped} events were dropped before this one (queue full)\n`;
      Deno.stderr.writeSync(new TextEncoder().encode(note));
    }
  },
  close: ([path]) => async ({ client, timeoutMs }) => {
    await client.walk(path).chan().close({ timeoutMs });
  },
  "mk@join": ([path]) => async ({ client, timeoutMs }) => {
    await client.walk(path).makeOnJoin({ timeoutMs });
  },
  "mk@leave": ([path]) => async ({ client, timeoutMs }) => {
    await client.walk(path).makeOnLeave({ timeoutMs });
  },
};
