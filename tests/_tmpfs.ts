/**
 * A small tmpfs for full-disk tests: mounted on a fresh directory (root only), filled to
 * the last byte on demand, unmounted and removed on dispose.
 *
 * @module
 */

import { TempDir } from "./_harness.ts";

async function run(cmd: string, args: string[]): Promise<{ ok: boolean; err: string }> {
  try {
    const o = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
    return { ok: o.success, err: new TextDecoder().decode(o.stderr).trim() };
  } catch (err) {
    return { ok: false, err: String(err) };
  }
}

/** A tmpfs mounted on a fresh directory. */
export class Tmpfs implements AsyncDisposable {
  readonly #dir: TempDir;

  private constructor(dir: TempDir) {
    this.#dir = dir;
  }

  /** Where it is mounted. */
  get path(): string {
    return this.#dir.path;
  }

  /**
   * Mount one.
   *
   * @param size its size, as `mount -o size=` takes it (`16m`)
   * @returns the mount, or why it cannot be made (to skip with)
   */
  static async mount(size: string): Promise<Tmpfs | string> {
    const dir = new TempDir();
    const r = await run("mount", [
      "-t",
      "tmpfs",
      "-o",
      `size=${size},mode=0700`,
      "tmpfs",
      dir.path,
    ]);
    if (!r.ok) {
      dir[Symbol.dispose]();
      return `cannot mount a tmpfs (${r.err || "mount failed"})`;
    }
    return new Tmpfs(dir);
  }

  /**
   * Why a tmpfs cannot be mounted here, or null when it can (mounts and unmounts one).
   *
   * @returns the reason, or null
   */
  static async unavailable(): Promise<string | null> {
    const probe = await Tmpfs.mount("1m");
    if (typeof probe === "string") return probe;
    await probe[Symbol.asyncDispose]();
    return null;
  }

  /**
   * Fill it with one file until not one more byte fits.
   *
   * @param name the file's name inside the mount
   * @returns the file's path (remove it to make room again)
   */
  async fill(name = "filler"): Promise<string> {
    const path = `${this.path}/${name}`;
    using f = await Deno.open(path, { write: true, create: true });
    for (const size of [1024 * 1024, 4096, 1]) {
      const buf = new Uint8Array(size);
      // Bounded: no more writes of each size than a 64 MiB file system takes.
      for (let i = 0; i < 64 * 1024 * 1024 / size; i++) {
        try {
          await f.write(buf);
        } catch (err) {
          if (!isDiskFullError(err)) throw err;
          break;
        }
      }
    }
    return path;
  }

  /** Unmount (lazily if busy) and remove the directory. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!(await run("umount", [this.path])).ok) await run("umount", ["-l", this.path]);
    this.#dir[Symbol.dispose]();
  }
}

/**
 * Whether an error is ENOSPC.
 *
 * @param err what was thrown
 * @returns true for a full disk
 */
export function isDiskFullError(err: unknown): boolean {
  return err instanceof Error && (err as { code?: string }).code === "ENOSPC";
}
