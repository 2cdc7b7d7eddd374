/**
 * Bodies of the DNS commands: parse → call the library → print.
 *
 * @module
 */

import type { Client } from "../mod.ts";
import { type Parsed, UsageError } from "./args.ts";
import { withSession } from "./session.ts";
import type { Runner } from "./commands.ts";

function args(p: Parsed, min: number, max: number, usage: string): string[] {
  const a = p.positionals.slice(1);
  if (a.length < min || a.length > max) {
    throw new UsageError(`usage: circuit ${p.positionals[0]} ${usage}`);
  }
  return a;
}

function run(
  p: Parsed,
  fn: (c: Client, timeoutMs: number | undefined) => Promise<void>,
): Promise<number> {
  return withSession(p, (s) => fn(s.client, s.timeoutMs));
}

/** The DNS commands, by name. */
export const DNS_COMMANDS: Record<string, Runner> = {
  mkdns: (p) =>
    run(p, async (c, timeoutMs) => {
      const [path, addr] = args(p, 1, 2, "ANCHOR [ADDR]");
      await c.walk(path).makeNameserver(addr, { timeoutMs });
    }),
  set: (p) =>
    run(p, async (c, timeoutMs) => {
      const [path, rr] = args(p, 2, 2, 'DNS "RR"');
      await c.walk(path).nameserver().set(rr, { timeoutMs });
    }),
  unset: (p) =>
    run(p, async (c, timeoutMs) => {
      const [path, name] = args(p, 2, 2, "DNS NAME");
      await c.walk(path).nameserver().unset(name, { timeoutMs });
    }),
};
