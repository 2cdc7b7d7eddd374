/**
 * Bodies of the DNS commands: parse → call the library → print.
 *
 * @module
 */

import { positionals, withClient } from "./session.ts";
import type { Runner } from "./commands.ts";

/** The DNS commands, by name. */
export const DNS_COMMANDS: Record<string, Runner> = {
  mkdns: (p) =>
    withClient(p, async (c, timeoutMs) => {
      const [path, addr] = positionals(p, 1, 2, "ANCHOR [ADDR]");
      await c.walk(path).makeNameserver(addr, { timeoutMs });
    }),
  set: (p) =>
    withClient(p, async (c, timeoutMs) => {
      const [path, rr] = positionals(p, 2, 2, 'DNS "RR"');
      await c.walk(path).nameserver().set(rr, { timeoutMs });
    }),
  unset: (p) =>
    withClient(p, async (c, timeoutMs) => {
      const [path, name] = positionals(p, 2, 2, "DNS NAME");
      await c.walk(path).nameserver().unset(name, { timeoutMs });
    }),
};
