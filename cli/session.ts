/**
 * Opening a client the way every client command does: dial order, key, timeout.
 *
 * @module
 */

import { type Client, connect, discover, readKeyFile } from "../mod.ts";
import type { Parsed } from "./args.ts";
import { chooseDial, parseDuration } from "./dial.ts";

/** A connected client and the command's --timeout. */
export interface Session {
  /** The client. */
  client: Client;
  /** `--timeout`, in ms, if given. */
  timeoutMs?: number;
}

/**
 * Dial `-d`, else `$CIRCUIT`'s URL, else discover; with `--hmac` / `$CIRCUIT_HMAC`.
 *
 * @param p parsed flags
 * @returns the session
 * @throws {UsageError} when there is nowhere to dial; dial and discovery errors
 */
export async function openSession(p: Parsed): Promise<Session> {
  const target = chooseDial({
    dial: p.flags.dial as string | undefined,
    circuitFile: Deno.env.get("CIRCUIT"),
    readFile: (f) => Deno.readTextFileSync(f),
    discover: p.flags.discover as string | undefined,
    discoverEnv: Deno.env.get("CIRCUIT_DISCOVER"),
  });
  const keyFile = (p.flags.hmac as string | undefined) || Deno.env.get("CIRCUIT_HMAC");
  const key = keyFile ? await readKeyFile(keyFile) : undefined;
  const timeoutMs = p.flags.timeout ? parseDuration(p.flags.timeout as string) : undefined;
  const dialTimeoutMs = timeoutMs ? Math.min(timeoutMs, 3000) : undefined;
  const url = "url" in target
    ? target.url
    : await discover(target.discover, { key, timeoutMs: dialTimeoutMs });
  const client = await connect(url, { key, ...(timeoutMs ? { timeoutMs, dialTimeoutMs } : {}) });
  return { client, timeoutMs };
}

/**
 * Run a command body with a session, closing the client afterwards.
 *
 * @param p parsed flags
 * @param fn the body
 * @returns exit code 0
 */
export async function withSession(p: Parsed, fn: (s: Session) => Promise<void>): Promise<number> {
  const s = await openSession(p);
  try {
    await fn(s);
    return 0;
  } finally {
    s.client.close();
  }
}
