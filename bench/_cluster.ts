/**
 * Real `circuit start` subprocesses for the benchmark: key files, starting servers
 * (optionally pinned to CPUs with `taskset`), waiting for their URL, waiting until a
 * cluster has converged, and stopping every one of them with SIGTERM.
 *
 * @module
 */

import { connect, readKeyFile } from "../mod.ts";

/** The repository root, with a trailing slash. */
export const ROOT: string = new URL("../", import.meta.url).pathname;
/** The CLI entry point. */
export const CLI: string = `${ROOT}cli.ts`;

/** A running server subprocess. */
export interface ServerProc {
  /** The URL it printed. */
  url: string;
  /** Its id (16 hex digits), from the URL. */
  id: string;
  /** Its process id (taskset execs, so this is the server itself). */
  pid: number;
  /** Its var directory. */
  varDir: string;
  /** The last few KiB of its stderr (its log). */
  stderrTail(): string;
  /** SIGTERM, wait for exit (SIGKILL after 5 s); idempotent. */
  stop(): Promise<void>;
}

/** Options of {@linkcode startServer}. */
export interface StartOptions {
  /** `--var DIR`. */
  varDir: string;
  /** `--hmac KEYFILE`. */
  hmac?: string;
  /** `-j URL`. */
  join?: string;
  /** A `taskset -c` CPU list, e.g. `0`; none to run unpinned. */
  pin?: string;
  /** How long to wait for the URL, in ms. @default {20000} */
  timeoutMs?: number;
}

const live = new Set<Service>();
const running = new Set<Deno.ChildProcess>();
let final = false;

/**
 * Build the argv that runs `deno run -A FLAGS… SCRIPT ARGS…`, under `taskset -c PIN` if
 * asked.
 *
 * @param script the script path
 * @param args its arguments
 * @param pin a CPU list, or undefined
 * @param flags more `deno run` flags, e.g. `--config FILE`
 * @returns command and arguments
 */
export function denoArgv(
  script: string,
  args: string[],
  pin?: string,
  flags: string[] = [],
): { cmd: string; args: string[] } {
  const deno = [Deno.execPath(), "run", "-A", ...flags, script, ...args];
  return pin
    ? { cmd: "taskset", args: ["-c", pin, ...deno] }
    : { cmd: deno[0], args: deno.slice(1) };
}

/**
 * Run a command to completion and capture its output.
 *
 * @param cmd the program
 * @param args its arguments
 * @returns exit code, stdout and stderr text
 */
export async function run(
  cmd: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  if (final) throw new Error("shutting down");
  const child = new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .spawn();
  running.add(child);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } finally {
    running.delete(child);
  }
}

/**
 * Whether a program can be run (it exits 0 with the given arguments).
 *
 * @param cmd the program
 * @param args arguments for a harmless invocation
 * @returns true when it ran and exited 0
 */
export async function canRun(cmd: string, args: string[]): Promise<boolean> {
  try {
    return (await run(cmd, args)).code === 0;
  } catch {
    return false;
  }
}

/**
 * `circuit keygen` into a file.
 *
 * @param path where to write the key file
 * @returns the path
 */
export async function keygen(path: string): Promise<string> {
  const r = await run(Deno.execPath(), ["run", "-A", CLI, "keygen"]);
  if (r.code !== 0) throw new Error(`circuit keygen failed: ${r.stderr.trim()}`);
  await Deno.writeTextFile(path, r.stdout);
  return path;
}

/** Keeps the last `max` characters written to it. */
class Tail {
  #text = "";
  constructor(private max: number) {}
  push(s: string): void {
    this.#text = (this.#text + s).slice(-this.max);
  }
  get text(): string {
    return this.#text;
  }
}

/** A subprocess that announced itself with one stdout line. */
export interface Service {
  /** The first stdout line, trimmed. */
  line: string;
  /** Its process id (taskset execs, so this is the program itself). */
  pid: number;
  /** The last few KiB of its stderr. */
  stderrTail(): string;
  /** SIGTERM, wait for exit (SIGKILL after 5 s); idempotent. */
  stop(): Promise<void>;
}

/**
 * Spawn a program, wait for its first stdout line, keep draining its output, and track
 * it so {@linkcode stopAll} can stop it.
 *
 * @param argv command and arguments
 * @param timeoutMs how long to wait for the line
 * @returns the running service
 * @throws {Error} when it exits or prints nothing in time (the process is stopped)
 */
export async function spawnService(
  argv: { cmd: string; args: string[] },
  timeoutMs = 20_000,
): Promise<Service> {
  if (final) throw new Error("shutting down");
  const child = new Deno.Command(argv.cmd, {
    args: argv.args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const { svc, tail, dec, isExited } = track(child);
  const stop = svc.stop;

  const reader = child.stdout.getReader();
  let buf = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((r) => (timer = setTimeout(() => r(null), timeoutMs)));
  const firstLine = (async (): Promise<string | null> => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return null;
      buf += dec.decode(value, { stream: true });
      const nl = buf.indexOf("\n");
      if (nl >= 0) return buf.slice(0, nl).trim();
    }
  })();
  const line = await Promise.race([firstLine, timeout]);
  clearTimeout(timer);
  if (!line) {
    await stop();
    await reader.cancel().catch(() => {});
    throw new Error(
      `${argv.args.join(" ")} printed nothing${isExited() ? " and exited" : " in time"}: ${
        tail.text.trim().split("\n").slice(-3).join(" / ")
      }`,
    );
  }
  void (async () => {
    try {
      while (!(await reader.read()).done) { /* drain */ }
    } catch { /* closed */ }
  })();
  svc.line = line;
  return svc;
}

/**
 * Track a spawned child: keep the tail of its stderr, register it so
 * {@linkcode stopAll} stops it, and give it an idempotent stop.
 */
function track(child: Deno.ChildProcess): {
  svc: Service;
  tail: Tail;
  dec: TextDecoder;
  isExited: () => boolean;
} {
  const tail = new Tail(4096);
  const dec = new TextDecoder();
  void child.stderr.pipeTo(new WritableStream({ write: (c) => tail.push(dec.decode(c)) })).catch(
    () => {},
  );
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = await Promise.race([
        status.then(() => true),
        new Promise<false>((r) => (timer = setTimeout(() => r(false), 5000))),
      ]);
      clearTimeout(timer);
      if (!done) {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
        await status;
      }
      live.delete(svc);
    })();
    return stopping;
  };
  const svc: Service = { line: "", pid: child.pid, stderrTail: () => tail.text, stop };
  live.add(svc);
  return { svc, tail, dec, isExited: () => exited };
}

/**
 * Spawn a daemon that announces nothing on stdout (sshd, redis-server, etcd), drain its
 * output, and poll `ready` until it answers; track it so {@linkcode stopAll} stops it.
 *
 * @param argv command and arguments
 * @param ready resolves true once the daemon serves (e.g. its port accepts)
 * @param timeoutMs how long to wait for readiness
 * @returns the running service (its `line` is empty)
 * @throws {Error} when it exits or is not ready in time (the process is stopped)
 */
export async function spawnDaemon(
  argv: { cmd: string; args: string[]; cwd?: string },
  ready: () => Promise<boolean>,
  timeoutMs = 20_000,
): Promise<Service> {
  if (final) throw new Error("shutting down");
  const child = new Deno.Command(argv.cmd, {
    args: argv.args,
    cwd: argv.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const { svc, tail, dec, isExited } = track(child);
  void child.stdout.pipeTo(new WritableStream({ write: (c) => tail.push(dec.decode(c)) })).catch(
    () => {},
  );
  const t0 = performance.now();
  for (;;) {
    if (isExited()) break;
    if (await ready().catch(() => false)) return svc;
    if (performance.now() - t0 > timeoutMs) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await svc.stop();
  throw new Error(
    `${argv.cmd} ${isExited() ? "exited" : "was not ready in time"}: ${
      tail.text.trim().split("\n").slice(-3).join(" / ")
    }`,
  );
}

/**
 * Start `circuit start` as a subprocess and wait for the URL on its stdout.
 *
 * @param o var dir, key file, join URL, CPU pinning
 * @returns the running server
 * @throws {Error} when it exits or prints nothing in time (the process is stopped)
 */
export async function startServer(o: StartOptions): Promise<ServerProc> {
  const args = ["start", "--var", o.varDir];
  if (o.hmac) args.push("--hmac", o.hmac);
  if (o.join) args.push("-j", o.join);
  const svc = await spawnService(denoArgv(CLI, args, o.pin), o.timeoutMs ?? 20_000);
  const id = /\/Q([0-9a-f]{16})\/?$/.exec(svc.line)?.[1];
  if (!id) {
    await svc.stop();
    throw new Error(`circuit start printed "${svc.line}", not a URL`);
  }
  return {
    url: svc.line,
    id,
    pid: svc.pid,
    varDir: o.varDir,
    stderrTail: svc.stderrTail,
    stop: svc.stop,
  };
}

/**
 * Stop every service this module started and has not stopped yet.
 *
 * @param shutdown also SIGTERM commands still running under {@linkcode run}, and refuse
 *   to start anything afterwards (for Ctrl-C)
 * @returns when all have exited
 */
export async function stopAll(shutdown = false): Promise<void> {
  if (shutdown) {
    final = true;
    for (const c of running) {
      try {
        c.kill("SIGTERM");
      } catch { /* gone */ }
    }
  }
  await Promise.all([...live].map((p) => p.stop()));
}

/** A group of servers stopped together; use with `await using`. */
export class Cluster implements AsyncDisposable {
  /** The servers, in start order. */
  readonly servers: ServerProc[] = [];

  /**
   * @param dir a directory under which each server gets its own var directory
   * @param hmac key file for every server, or none
   * @param pin `taskset -c` CPU list for every server, or none
   */
  constructor(readonly dir: string, readonly hmac?: string, readonly pin?: string) {}

  /**
   * Start one more server.
   *
   * @param join URL to join, or none for a new cluster
   * @returns the server
   */
  async add(join?: string): Promise<ServerProc> {
    const varDir = `${this.dir}/s${crypto.randomUUID().slice(0, 8)}`;
    const s = await startServer({ varDir, hmac: this.hmac, join, pin: this.pin });
    this.servers.push(s);
    return s;
  }

  /**
   * Start `n` servers that all join the first one (a star), the joiners in parallel.
   *
   * @param n how many servers in all
   * @returns the servers
   */
  async star(n: number): Promise<ServerProc[]> {
    const seed = this.servers[0] ?? await this.add();
    const more = n - this.servers.length;
    await Promise.all(Array.from({ length: more }, () => this.add(seed.url)));
    return this.servers;
  }

  /** Stop every server in the group. */
  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
  }

  /** Same as {@linkcode stop}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/**
 * Poll each server with the client library until every one lists `n` servers at `/`.
 *
 * @param urls servers to ask
 * @param n members expected
 * @param keyFile the cluster key file, if keyed
 * @param timeoutMs give up after this long
 * @returns milliseconds until every server listed `n`
 * @throws {Error} on timeout, naming how many each server saw
 */
export async function waitConverged(
  urls: string[],
  n: number,
  keyFile?: string,
  timeoutMs = 60_000,
): Promise<number> {
  const key = keyFile ? await readKeyFile(keyFile) : undefined;
  const t0 = performance.now();
  const clients = await Promise.all(urls.map((u) => connect(u, { key, timeoutMs: 5000 })));
  try {
    const seen = new Array<number>(urls.length).fill(0);
    for (;;) {
      await Promise.all(clients.map(async (c, i) => {
        if (seen[i] >= n) return;
        try {
          seen[i] = (await c.walk("/").ls()).length;
        } catch { /* retry */ }
      }));
      if (seen.every((k) => k >= n)) return performance.now() - t0;
      if (performance.now() - t0 > timeoutMs) {
        throw new Error(
          `cluster did not converge to ${n} in ${timeoutMs} ms: saw ${seen.join(",")}`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    for (const c of clients) c.close();
  }
}
