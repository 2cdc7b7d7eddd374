/**
 * What circuit's servers logged about membership: `member X… joined|left|failed` lines in
 * each server's `server.log`, with their times.
 *
 * @module
 */

import type { Member } from "./systems.ts";

/** Milliseconds since the epoch of a server.log line (`2026-11-25 05:49:57.184 +00:00`). */
export function logTime(line: string): number | null {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d+) ([+-]\d\d:\d\d)/.exec(line);
  return m ? Date.parse(`${m[1]}T${m[2]}${m[3]}`) : null;
}

/** One membership line of a server.log. */
export interface LogEvent {
  at: number;
  id: string;
  what: "joined" | "left" | "failed";
}

/** The membership lines of the server.log in `varDir` (none when it is missing). */
export async function serverLog(varDir: string): Promise<LogEvent[]> {
  const text = await Deno.readTextFile(`${varDir}/server.log`).catch(() => "");
  const out: LogEvent[] = [];
  for (const line of text.split("\n")) {
    const m = /circuit·membership: member X([0-9a-f]{16}) (joined|left|failed)/.exec(line);
    const at = logTime(line);
    if (m && at !== null) out.push({ at, id: m[1], what: m[2] as LogEvent["what"] });
  }
  return out;
}

/** ms after `wallT0` of the last `joined` line in any of the servers' logs. */
export async function lastLoggedJoin(
  members: Member[],
  wallT0: number,
): Promise<number | undefined> {
  let last = -Infinity;
  for (const m of members) {
    for (const e of await serverLog(m.varDir!)) {
      if (e.what === "joined") last = Math.max(last, e.at);
    }
  }
  return Number.isFinite(last) ? last - wallT0 : undefined;
}
