/**
 * `mkdkr`: parse → call the library → print. The other container verbs are the process
 * commands, which work on any process-like element.
 *
 * @module
 */

import type { ContainerRun } from "../mod.ts";
import { type Parsed, UsageError } from "./args.ts";
import { withSession } from "./session.ts";
import type { Runner } from "./commands.ts";

/** The docker commands, by name. */
export const DOCKER_COMMANDS: Record<string, Runner> = {
  mkdkr: async (p: Parsed) => {
    const a = p.positionals.slice(1);
    if (a.length !== 1) throw new UsageError("usage: circuit mkdkr [--scrub] ANCHOR < JSON");
    const text = await new Response(Deno.stdin.readable).text();
    let run: ContainerRun;
    try {
      run = JSON.parse(text);
    } catch (err) {
      const why = (err as Error).message.replace(/\s+/g, " ");
      throw new UsageError(`command json not parsing: ${why}`);
    }
    if (p.flags.scrub && run && typeof run === "object") run.Scrub = true;
    return await withSession(p, async ({ client, timeoutMs }) => {
      await client.walk(a[0]).makeDocker(run, { timeoutMs: timeoutMs ?? 30_000 });
    });
  },
};
