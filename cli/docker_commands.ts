/**
 * `mkdkr`: parse → call the library → print. The other container verbs are the process
 * commands, which work on any process-like element.
 *
 * @module
 */

import { connect, type ContainerRun, readKeyFile } from "../mod.ts";
import { type Parsed, UsageError } from "./args.ts";
import { chooseDial, parseDuration } from "./dial.ts";
import type { Runner } from "./commands.ts";

/** The docker commands, by name. */
export const DOCKER_COMMANDS: Record<string, Runner> = {
  mkdkr: async (p: Parsed) => {
    const a = p.positionals.slice(1);
    if (a.length !== 1) throw new UsageError("usage: circuit mkdkr [--scrub] ANCHOR < JSON");
    const target = chooseDial({
      dial: p.flags.dial as string | undefined,
      circuitFile: Deno.env.get("CIRCUIT"),
      readFile: (f) => Deno.readTextFileSync(f),
      discover: p.flags.discover as string | undefined,
      discoverEnv: Deno.env.get("CIRCUIT_DISCOVER"),
    });
    if ("discover" in target) {
      throw new UsageError(
        `Discovering a server on ${target.discover} failed: multicast discovery is not implemented yet; use -dial`,
      );
    }
    const text = await new Response(Deno.stdin.readable).text();
    let run: ContainerRun;
    try {
      run = JSON.parse(text);
    } catch (err) {
      const why = (err as Error).message.replace(/\s+/g, " ");
      throw new UsageError(`container json not parsing: ${why}`);
    }
    if (p.flags.scrub && run && typeof run === "object") run.Scrub = true;
    const keyFile = (p.flags.hmac as string | undefined) || Deno.env.get("CIRCUIT_HMAC");
    const timeoutMs = p.flags.timeout ? parseDuration(p.flags.timeout as string) : 30_000;
    const client = await connect(target.url, {
      key: keyFile ? await readKeyFile(keyFile) : undefined,
      timeoutMs,
    });
    try {
      await client.walk(a[0]).makeDocker(run);
      return 0;
    } finally {
      client.close();
    }
  },
};
