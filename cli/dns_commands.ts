/**
 * Bodies of the DNS commands: arguments → call the library → print.
 *
 * @module
 */

import type { ClientBody } from "./command.ts";

/** The DNS commands, by name. */
export const DNS_COMMANDS: Record<string, ClientBody> = {
  mkdns: ([path, addr]) => async ({ client, timeoutMs }) => {
    await client.walk(path).makeNameserver(addr, { timeoutMs });
  },
  set: ([path, rr]) => async ({ client, timeoutMs }) => {
    await client.walk(path).nameserver().set(rr, { timeoutMs });
  },
  unset: ([path, name]) => async ({ client, timeoutMs }) => {
    await client.walk(path).nameserver().unset(name, { timeoutMs });
  },
};
