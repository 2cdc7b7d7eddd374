/**
 * `mkdkr`: arguments and input → call the library. The other container verbs are the
 * process commands, which work on any process-like element.
 *
 * @module
 */

import type { ContainerRun } from "../mod.ts";
import type { ClientBody } from "./command.ts";
import { readJsonInput } from "./session.ts";

/** The docker commands, by name. */
export const DOCKER_COMMANDS: Record<string, ClientBody> = {
  mkdkr: async ([path], p) => {
    const run = await readJsonInput() as ContainerRun;
    if (p.flags.scrub && run && typeof run === "object") run.Scrub = true;
    return async ({ client, timeoutMs }) => {
      await client.walk(path).makeDocker(run, { timeoutMs: timeoutMs ?? 30_000 });
    };
  },
};
