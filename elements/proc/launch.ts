/**
 * Starting a process in its own session and process group without blocking the server.
 *
 * `Deno.Command` with `detached: true` calls setsid() between fork and exec, so the
 * runtime forks the whole server: about 1.3 ms at 47 MB RSS and 2.3 ms at 290 MB here,
 * with the event loop stopped meanwhile. Without it the runtime uses posix_spawn (vfork),
 * about 0.35 ms whatever the size. So when the host has `setsid` (util-linux, or
 * busybox) the program is started as `setsid PATH ARGS…`: setsid is not a group leader,
 * so it calls setsid() and execs the program in place (same PID, no fork).
 *
 * The runtime can then no longer report a program that fails to exec, so the common
 * failures are checked first, with the runtime's own wording: a missing working
 * directory, a missing program, a program that is not an executable file. A rarer exec
 * failure (a bad binary format, a missing script interpreter) ends the process with exit
 * status 126 or 127 and setsid's message on its stderr, as a shell reports it.
 *
 * @module
 */

/** Where setsid may be; the first that exists is used. */
const SETSID_PATHS = ["/usr/bin/setsid", "/bin/setsid", "/usr/sbin/setsid", "/sbin/setsid"];

let setsid: string | null | undefined;

/**
 * The setsid program to launch through, or null to use `detached` spawns.
 * `CIRCUIT_NO_SETSID=1` forces the latter.
 *
 * @returns the path, looked up once
 */
export function setsidPath(): string | null {
  if (setsid !== undefined) return setsid;
  setsid = null;
  if (Deno.env.get("CIRCUIT_NO_SETSID") === "1") return setsid;
  for (const p of SETSID_PATHS) {
    try {
      const st = Deno.statSync(p);
      if (st.isFile && ((st.mode ?? 0) & 0o111)) return (setsid = p);
    } catch { /* not here */ }
  }
  return setsid;
}

/**
 * Why the program cannot be executed, in the runtime's words, or null when it looks
 * executable.
 *
 * @param path the path to spawn (contains a slash)
 * @param dir the working directory, or undefined for the server's
 * @returns `Failed to spawn '…': …`, or null
 */
export function execProblem(path: string, dir: string | undefined): string | null {
  if (dir) {
    let isDir = false;
    try {
      isDir = Deno.statSync(dir).isDirectory;
    } catch { /* missing */ }
    if (!isDir) return `Failed to spawn '${path}': No such cwd '${dir}'`;
  }
  const full = path.startsWith("/") ? path : `${dir ?? Deno.cwd()}/${path}`;
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(full);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "No such file or directory (os error 2)"
      : err instanceof Deno.errors.PermissionDenied
      ? "Permission denied (os error 13)"
      : (err as Error).message;
    return `Failed to spawn '${path}': ${why}`;
  }
  if (!st.isFile || !((st.mode ?? 0) & 0o111)) {
    return `Failed to spawn '${path}': Permission denied (os error 13)`;
  }
  return null;
}
