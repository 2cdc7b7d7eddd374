/**
 * The server's `--var` directory: an exclusive lock (one server per directory), the
 * server log and the operation log.
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";

/** How long to wait for the lock before deciding another server holds it, in ms. */
export const LOCK_WAIT_MS = 300;

/** A held var directory. */
export interface VarDir {
  /** The directory. */
  path: string;
  /** Release the lock. */
  release(): void;
}

/**
 * The default var directory: under the temp dir, per server id.
 *
 * @param id the server id
 * @returns the path
 */
export function defaultVarDir(id: string): string {
  const tmp = Deno.env.get("TMPDIR") || "/tmp";
  return `${tmp}/circuit/X${id}`;
}

/**
 * Create the directory if needed and take its lock. The lock is an OS file lock, so a
 * crashed server never leaves it held.
 *
 * @param path the directory
 * @returns the held directory
 * @throws {CircuitError} `busy` when another server holds it; `bad request` when it cannot be made
 */
export async function lockVarDir(path: string): Promise<VarDir> {
  let file: Deno.FsFile;
  try {
    await Deno.mkdir(path, { recursive: true });
    file = await Deno.open(`${path}/lock`, { create: true, write: true });
  } catch (err) {
    throw new CircuitError(
      "bad request",
      `Opening var directory "${path}" failed: ${(err as Error).message}`,
      { cause: err },
    );
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const locked = await Promise.race([
    file.lock(true).then(() => true),
    new Promise<false>((r) => timer = setTimeout(() => r(false), LOCK_WAIT_MS)),
  ]);
  clearTimeout(timer);
  if (!locked) {
    throw new CircuitError(
      "busy",
      `Locking var directory "${path}" failed: another circuit server is using it`,
    );
  }
  await Deno.writeTextFile(`${path}/pid`, `${Deno.pid}\n`);
  return {
    path,
    release() {
      try {
        file.close();
      } catch { /* closed */ }
    },
  };
}
