/**
 * The server's `--var` directory: an exclusive lock (one server per directory), the
 * server log and the operation log.
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";
import { LOCK_WAIT_MS, SHARED_PARENT_MODE, VAR_DIR_MODE, VAR_FILE_MODE } from "./config.ts";

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

/** Options of {@linkcode lockVarDir}. */
export interface LockVarDirOptions {
  /**
   * The directory is a default one, in the parent every user's servers share
   * (`$TMPDIR/circuit`): make that parent sticky and world-writable if it is missing, and
   * leave it alone if it exists.
   */
  sharedParent?: boolean;
}

/** The directory a path is in (`.` for a bare name, `/` at the top). */
function dirname(path: string): string {
  const p = path.replace(/\/+$/, "");
  const slash = p.lastIndexOf("/");
  return slash < 0 ? "." : slash === 0 ? "/" : p.slice(0, slash);
}

function openFailed(path: string, why: string, cause?: unknown): CircuitError {
  return new CircuitError("bad request", `Opening var directory "${path}" failed: ${why}`, {
    cause,
  });
}

/** Make the parent every user's default var directories share, if it is missing. */
async function ensureSharedParent(parent: string): Promise<void> {
  try {
    await Deno.mkdir(parent, { mode: 0o700 });
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) return;
    throw err;
  }
  // Created here (0700 until now, so nobody raced in); open it to everyone, sticky.
  await Deno.chmod(parent, SHARED_PARENT_MODE);
}

/**
 * Make the var directory itself, or check one that exists: a real directory (not a
 * symbolic link), owned by this user, not a shared (sticky) directory; then narrow it to
 * {@linkcode VAR_DIR_MODE}.
 */
async function ensureOwnDir(path: string): Promise<void> {
  try {
    await Deno.mkdir(path, { mode: VAR_DIR_MODE });
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
  }
  const st = await Deno.lstat(path);
  if (st.isSymlink || !st.isDirectory) throw openFailed(path, "it is not a directory");
  const me = Deno.uid();
  if (me !== null && st.uid !== null && st.uid !== me) {
    throw openFailed(
      path,
      `it belongs to another user (uid ${st.uid}); use a directory of your own`,
    );
  }
  if (st.mode !== null && (st.mode & 0o1000)) {
    throw openFailed(path, "it is a shared directory (sticky bit); use a directory of its own");
  }
  if (st.mode !== null && (st.mode & 0o7777) !== VAR_DIR_MODE) {
    await Deno.chmod(path, VAR_DIR_MODE);
  }
}

/**
 * Create the directory if needed and take its lock. The lock is an OS file lock, so a
 * crashed server never leaves it held. The directory ends up mode 0700 and owned by this
 * user; the `lock` and `pid` files are 0600.
 *
 * @param path the directory
 * @param options whether it is a default one under the shared parent
 * @returns the held directory
 * @throws {CircuitError} `busy` when another server holds it; `bad request` when it cannot be made, or is not this user's own
 */
export async function lockVarDir(path: string, options: LockVarDirOptions = {}): Promise<VarDir> {
  let file: Deno.FsFile;
  try {
    const parent = dirname(path);
    if (options.sharedParent) {
      await Deno.mkdir(dirname(parent), { recursive: true });
      await ensureSharedParent(parent);
    } else {
      await Deno.mkdir(parent, { recursive: true });
    }
    await ensureOwnDir(path);
    file = await Deno.open(`${path}/lock`, { create: true, write: true, mode: VAR_FILE_MODE });
    await Deno.chmod(`${path}/lock`, VAR_FILE_MODE);
  } catch (err) {
    if (err instanceof CircuitError) throw err;
    throw openFailed(path, (err as Error).message, err);
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
  await Deno.writeTextFile(`${path}/pid`, `${Deno.pid}\n`, { mode: VAR_FILE_MODE });
  await Deno.chmod(`${path}/pid`, VAR_FILE_MODE);
  return {
    path,
    release() {
      try {
        file.close();
      } catch { /* closed */ }
    },
  };
}
