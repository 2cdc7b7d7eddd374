/**
 * `circuit start`: run a server until SIGTERM, SIGINT or `suicide`.
 *
 * @module
 */

import { startServer } from "../server/mod.ts";
import {
  LOG_FORMATS,
  LOG_LEVELS,
  type ServerLogFormat,
  type ServerLogLevel,
} from "../server/log.ts";
import { type Parsed, UsageError } from "./args.ts";
import { parseBytes, parseDuration } from "./dial.ts";
import type { MembershipProfile } from "../net/membership/mod.ts";

function membershipProfile(s: string): MembershipProfile {
  if (s === "lan" || s === "wan" || s === "test") return s;
  throw new UsageError(`--membership must be lan, wan or test, got "${s}"`);
}

function oneOf<T extends string>(flag: string, s: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(s)) return s as T;
  const list = `${allowed.slice(0, -1).join(", ")} or ${allowed.at(-1)}`;
  throw new UsageError(`--${flag} must be ${list}, got "${s}"`);
}

/** `--log-file`: a path, `none` (stderr only), or the server's default when not given. */
function logFile(s: string | undefined): string | null | undefined {
  if (s === undefined) return undefined;
  if (s === "none") return null;
  if (s === "") throw new UsageError(`--log-file must be a path or none`);
  return s;
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
      ? /^0+(?:\.0+)?(?:ns|us|µs|μs|ms|s|m|h)?$/.test((f["output-hold"] as string).trim())
        ? 0
        : parseDuration(f["output-hold"] as string, "output-hold")
      : undefined,
    scrubGraceMs: f["scrub-grace"]
      ? parseDuration(f["scrub-grace"] as string, "scrub-grace")
      : undefined,
    membership: f.membership ? { profile: membershipProfile(f.membership as string) } : {},
    logLevel: f["log-level"]
      ? oneOf<ServerLogLevel>("log-level", f["log-level"] as string, LOG_LEVELS)
      : undefined,
    logFormat: f["log-format"]
      ? oneOf<ServerLogFormat>("log-format", f["log-format"] as string, LOG_FORMATS)
      : undefined,
    logFile: logFile(f["log-file"] as string | undefined),
    metrics: (f.metrics as string | undefined) || undefined,
    handleSignals: true,
  });
  Deno.stdout.writeSync(new TextEncoder().encode(server.url + "\n"));
  await server.stopped;
  return 0;
}
