/**
 * Opening a client the way every client command does: dial order, key, timeout.
 *
 * @module
 */

import { type Client, connect, discover, readKeyFile } from "../mod.ts";
import { type Parsed, UsageError } from "./args.ts";
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
  // A command makes one or two calls: a second handshake with another server would cost
  // more than forwarding them saves.
  const client = await connect(url, {
    key,
    direct: false,
    ...(timeoutMs ? { timeoutMs, dialTimeoutMs } : {}),
  });
  return { client, timeoutMs };
}

/**
 * Run a command body with a session, closing the client afterwards.
 *
 * @param p parsed flags
 * @param fn the body
 * @returns exit code 0
 */
export async function withSession(
  p: Parsed,
  fn: (s: Session) => Promise<number | void>,
): Promise<number> {
  const s = await openSession(p);
  try {
    return (await fn(s)) ?? 0;
  } finally {
    s.client.close();
  }
}

/**
 * Run a command body with a client and the command's --timeout.
 *
 * @param p parsed flags
 * @param fn the body
 * @returns exit code 0
 */
export function withClient(
  p: Parsed,
  fn: (c: Client, timeoutMs: number | undefined) => Promise<void>,
): Promise<number> {
  return withSession(p, (s) => fn(s.client, s.timeoutMs));
}

/**
 * The command's arguments after its name, checked for count.
 *
 * @param p parsed flags
 * @param min fewest allowed
 * @param max most allowed
 * @param usage the usage text after the command name
 * @returns the arguments
 * @throws {UsageError} `usage: circuit COMMAND USAGE` on a wrong count
 */
export function positionals(p: Parsed, min: number, max: number, usage: string): string[] {
  const a = p.positionals.slice(1);
  if (a.length < min || a.length > max) {
    throw new UsageError(`usage: circuit ${p.positionals[0]} ${usage}`);
  }
  return a;
}

/**
 * Write bytes to stdout, all of them.
 *
 * @param b the bytes
 */
export function writeOut(b: Uint8Array): void {
  let off = 0;
  while (off < b.length) off += Deno.stdout.writeSync(b.subarray(off));
}

/**
 * Write text to stdout.
 *
 * @param text the text
 */
export function print(text: string): void {
  writeOut(new TextEncoder().encode(text));
}
