/**
 * Opening a client the way every client command does (dial order, key, timeout), and
 * the terminal I/O the commands share.
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

/** What a client command does on its session; returns the exit code (default 0). */
export type SessionAction = (s: Session) => Promise<number | void>;

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
 * Run a client command's action on a session, closing the client afterwards. Every client
 * command runs through here.
 *
 * @param p parsed flags (dial, key, timeout)
 * @param action what the command does once connected
 * @returns its exit code (0 when it returns none)
 */
export async function withSession(p: Parsed, action: SessionAction): Promise<number> {
  const s = await openSession(p);
  try {
    return (await action(s)) ?? 0;
  } finally {
    s.client.close();
  }
}

/**
 * Read all of stdin.
 *
 * @returns the bytes up to EOF
 */
export async function readStdin(): Promise<Uint8Array> {
  return new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
}

/**
 * Read a command's JSON input (`mkproc`, `mkdkr`) from stdin.
 *
 * @returns the parsed value
 * @throws {UsageError} `command json not parsing: …` when it is not JSON
 */
export async function readJsonInput(): Promise<unknown> {
  const text = new TextDecoder().decode(await readStdin());
  try {
    return JSON.parse(text);
  } catch (err) {
    const why = (err as Error).message.replace(/\s+/g, " ");
    throw new UsageError(`command json not parsing: ${why}`);
  }
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
