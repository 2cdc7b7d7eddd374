/**
 * `circuit start`: run a server until SIGTERM, SIGINT or `suicide`.
 *
 * @module
 */

import { startServer } from "../server/mod.ts";
import { type Parsed, UsageError } from "./args.ts";
import { parseBytes, parseDuration } from "./dial.ts";
import type { MembershipProfile } from "../net/membership/mod.ts";

function membershipProfile(s: string): MembershipProfile {
  if (s === "lan" || s === "wan" || s === "test") return s;
  throw new UsageError(`--membership must be lan, wan or test, got "${s}"`);
}

/**
 * Start, print the URL, serve.
 *
 * @param args the arguments after `start` (there must be none)
 * @param p parsed flags
 * @returns exit code once the server has stopped
 * @throws {UsageError} when given arguments or a bad flag value
 */
export async function runStart(args: string[], p: Parsed): Promise<number> {
  if (args.length > 0) throw new UsageError(`start takes no arguments, got "${args[0]}"`);
  const f = p.flags as Record<string, string | boolean | undefined>;
  const discover = f.discover !== undefined
    ? f.discover as string
    : Deno.env.get("CIRCUIT_DISCOVER");
  const server = await startServer({
    addr: f.addr as string | undefined,
    iface: f.if as string | undefined,
    join: p.repeated?.join ?? (f.join ? [f.join as string] : undefined),
    discover: discover || undefined,
    hmacFile: (f.hmac as string | undefined) || Deno.env.get("CIRCUIT_HMAC") || undefined,
    docker: f.docker === true,
    varDir: f.var as string | undefined,
    insecure: f.insecure === true,
    outputBoundBytes: f["output-bound"]
      ? parseBytes(f["output-bound"] as string, "output-bound")
      : undefined,
    outputHoldMs: f["output-hold"]
      ? (f["output-hold"] as string).trim() === "0"
        ? 0
        : parseDuration(f["output-hold"] as string, "output-hold")
      : undefined,
    scrubGraceMs: f["scrub-grace"]
      ? parseDuration(f["scrub-grace"] as string, "scrub-grace")
      : undefined,
    membership: f.membership ? { profile: membershipProfile(f.membership as string) } : {},
    handleSignals: true,
  });
  Deno.stdout.writeSync(new TextEncoder().encode(server.url + "\n"));
  await server.stopped;
  return 0;
}
