/**
 * Shared pieces of the membership tests in network namespaces: keyed, discovering servers
 * on test hosts, their listings, and the leave reports read from their logs.
 *
 * @module
 */

import { cli, missingTool, Server } from "./_harness.ts";
import { type Host, netnsUnavailable } from "./_netns.ts";

/** The discovery group the test hosts announce on. */
export const GROUP = "228.8.8.8:7711";
/** The port every test host's server binds, inside its own namespace. */
export const PORT = 7700;

/** Why these tests cannot run here (no namespaces, a missing tool), or null. */
export async function whyUnavailable(tools: string[]): Promise<string | null> {
  return await netnsUnavailable() ?? await missingTool(tools);
}

/** A server on a host, with when it was killed (if it was). */
export interface Run {
  host: Host;
  server: Server;
  id: string;
  killedAt?: number;
}

/** Start a keyed, discovering server on a test host. */
export function start(h: Host, key: string): Promise<Server> {
  return Server.start({
    prefix: h.prefix,
    args: ["-a", `${h.addr}:${PORT}`, "--hmac", key, "--discover", GROUP],
  });
}

/** Start a server on a test host and remember it as a run. */
export async function startRun(h: Host, key: string): Promise<Run> {
  const server = await start(h, key);
  return { host: h, server, id: server.path.slice(2) };
}

/** The servers `ls /` shows through a run's server. */
export async function listing(r: Run, key: string): Promise<string[]> {
  const out = await cli(["ls", "-d", r.server.url, "--hmac", key, "/"], { prefix: r.host.prefix });
  return out.stdout.split("\n").filter(Boolean).sort();
}

/** Whether every run lists exactly `want`. */
export async function everyoneLists(
  runs: Run[],
  key: string,
  want: Run[] = runs,
): Promise<boolean> {
  const expected = JSON.stringify(want.map((r) => r.server.path).sort());
  const got = await Promise.all(runs.map((r) => listing(r, key)));
  return got.every((l) => JSON.stringify(l) === expected);
}

/** A leave report from a server log: who reported whom, when (ms since the epoch). */
export interface LeaveReport {
  by: string;
  about: string;
  at: number;
  line: string;
}

const LEAVE_LINE = /^(\S+ \S+ [+-]\d\d:\d\d) .*member X([0-9a-f]{16}) (failed|left)/;

/** Every `member X… failed|left` line in the runs' server logs. */
export async function leaveReports(runs: Run[]): Promise<LeaveReport[]> {
  const out: LeaveReport[] = [];
  for (const r of runs) {
    const text = await Deno.readTextFile(`${r.server.varDir}/server.log`).catch(() => "");
    for (const line of text.split("\n")) {
      const m = LEAVE_LINE.exec(line);
      if (!m) continue;
      const at = Date.parse(m[1].replace(" ", "T").replace(" ", ""));
      out.push({ by: r.id, about: m[2], at, line });
    }
  }
  return out;
}

/** Reports about a server that was alive at the time: never killed, or before its kill. */
export async function falseLeaves(runs: Run[]): Promise<LeaveReport[]> {
  const byId = new Map(runs.map((r) => [r.id, r]));
  return (await leaveReports(runs)).filter((rep) => {
    const victim = byId.get(rep.about);
    return victim !== undefined && (victim.killedAt === undefined || rep.at < victim.killedAt);
  });
}

/** Stop every run's server. */
export async function disposeAll(runs: Run[]): Promise<void> {
  await Promise.all(runs.map((r) => r.server[Symbol.asyncDispose]()));
}
