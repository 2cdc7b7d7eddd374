/**
 * Test helpers: real `circuit` servers as subprocesses, the real CLI, temp dirs, and
 * waiting on conditions. Everything started here is stopped by `using`/`await using`.
 *
 * @module
 */

import { connect } from "../mod.ts";
import { assert } from "./_assert.ts";

export {
  assert,
  assertEquals,
  assertNotEquals,
  assertRejects,
  assertThrows,
  equal,
} from "./_assert.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CLI = `${ROOT}cli.ts`;
const DENO = Deno.execPath();

/** Result of one CLI run. */
export interface CliResult {
  /** Exit code. */
  code: number;
  /** Standard output, as text. */
  stdout: string;
  /** Standard error, as text. */
  stderr: string;
}

/** Options of {@linkcode cli}. */
export interface CliOptions {
  /** Bytes or text for standard input. */
  stdin?: string | Uint8Array;
  /** Extra environment (merged over a clean copy of ours). */
  env?: Record<string, string>;
  /** Environment variables to remove. */
  unset?: string[];
  /** A command to run under, e.g. `["ip", "netns", "exec", "ns1"]`. */
  prefix?: string[];
}

function childEnv(
  opts: { env?: Record<string, string>; unset?: string[] },
): Record<string, string> {
  const env: Record<string, string> = {
    ...Deno.env.toObject(),
    NO_COLOR: "1",
    ...(opts.env ?? {}),
  };
  for (const k of ["CIRCUIT", "CIRCUIT_HMAC", "CIRCUIT_DISCOVER", ...(opts.unset ?? [])]) {
    if (!opts.env || !(k in opts.env)) delete env[k];
  }
  return env;
}

/**
 * Run `circuit ARGS…` to completion.
 *
 * @param args arguments after `circuit`
 * @param opts stdin and environment
 * @returns exit code and output
 */
export async function cli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const [exe, ...pre] = opts.prefix ? [...opts.prefix, DENO] : [DENO];
  const cmd = new Deno.Command(exe, {
    args: [...pre, "run", "-A", CLI, ...args],
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: childEnv(opts),
    clearEnv: true,
  });
  const child = cmd.spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    try {
      await w.write(
        typeof opts.stdin === "string" ? new TextEncoder().encode(opts.stdin) : opts.stdin,
      );
      await w.close();
    } catch (err) {
      // A command may exit without reading all its input (as `head` does).
      if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
    }
  }
  const o = await child.output();
  const dec = new TextDecoder();
  return { code: o.code, stdout: dec.decode(o.stdout), stderr: dec.decode(o.stderr) };
}

/** A temp directory removed on dispose. */
export class TempDir implements Disposable {
  /** Its path. */
  readonly path = Deno.makeTempDirSync({ prefix: "circuit-test-" });
  /** Remove it. */
  [Symbol.dispose](): void {
    try {
      Deno.removeSync(this.path, { recursive: true });
    } catch { /* gone */ }
  }
}

/** Options of {@linkcode Server.start}. */
export interface StartOptions {
  /** Extra `circuit start` flags. */
  args?: string[];
  /** `--var DIR`; default a fresh temp dir. */
  varDir?: string;
  /** Extra environment. */
  env?: Record<string, string>;
  /** A command to run under, e.g. `["ip", "netns", "exec", "ns1"]`. */
  prefix?: string[];
}

/** A `circuit start` subprocess. */
export class Server implements AsyncDisposable {
  /** The printed URL. */
  readonly url: string;
  /** `/X…`. */
  readonly path: string;
  /** Its var directory. */
  readonly varDir: string;
  /** The process. */
  readonly child: Deno.ChildProcess;
  #stderr: Promise<string>;
  #status: Promise<Deno.CommandStatus>;
  #tmp: TempDir | null;

  private constructor(
    child: Deno.ChildProcess,
    url: string,
    varDir: string,
    stderr: Promise<string>,
    tmp: TempDir | null,
  ) {
    this.child = child;
    this.url = url;
    this.path = "/X" + url.slice(url.lastIndexOf("/Q") + 2);
    this.varDir = varDir;
    this.#stderr = stderr;
    this.#status = child.status;
    this.#tmp = tmp;
  }

  /**
   * Start a server and wait for its URL.
   *
   * @param opts flags, var dir, environment
   * @returns the running server
   * @throws {Error} with the server's stderr when it exits before printing a URL
   */
  static async start(opts: StartOptions = {}): Promise<Server> {
    const tmp = opts.varDir ? null : new TempDir();
    const varDir = opts.varDir ?? tmp!.path;
    const [exe, ...pre] = opts.prefix ? [...opts.prefix, DENO] : [DENO];
    const child = new Deno.Command(exe, {
      args: [...pre, "run", "-A", CLI, "start", "--var", varDir, ...(opts.args ?? [])],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: childEnv(opts),
      clearEnv: true,
    }).spawn();
    const stderr = new Response(child.stderr).text();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("\n")) {
      const r = await reader.read();
      if (r.done) break;
      text += r.value;
    }
    // Drain the rest of stdout (there should be none) so the pipe never blocks.
    const rest = (async () => {
      while (!(await reader.read()).done) { /* drain */ }
    })();
    if (!text.includes("\n")) {
      await rest;
      const status = await child.status;
      const err = await stderr;
      tmp?.[Symbol.dispose]();
      throw new Error(`server exited ${status.code} before printing a URL: ${err.trim()}`);
    }
    void rest;
    return new Server(child, text.trim(), varDir, stderr, tmp);
  }

  /** Its stderr once it has exited. */
  stderr(): Promise<string> {
    return this.#stderr;
  }

  /** Resolves with the exit status. */
  get status(): Promise<Deno.CommandStatus> {
    return this.#status;
  }

  /**
   * Send a signal (ignored when already exited).
   *
   * @param sig the signal
   */
  kill(sig: Deno.Signal = "SIGTERM"): void {
    try {
      this.child.kill(sig);
    } catch { /* exited */ }
  }

  /** Stop with SIGKILL if still running, wait, and clean up. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.kill("SIGKILL");
    await this.#status;
    await this.#stderr;
    this.#tmp?.[Symbol.dispose]();
  }
}

/** Servers disposed together. */
export class Cluster implements AsyncDisposable {
  /** The servers, in start order. */
  readonly servers: Server[] = [];

  /**
   * Start `n` servers, each joining the previous one (`-j` chain).
   *
   * @param n how many
   * @param args extra flags for each
   * @returns this
   */
  async chain(n: number, args: string[] = []): Promise<this> {
    for (let i = 0; i < n; i++) {
      const prev = this.servers.at(-1);
      this.servers.push(await Server.start({ args: [...args, ...(prev ? ["-j", prev.url] : [])] }));
    }
    return this;
  }

  /**
   * Add a server.
   *
   * @param opts start options
   * @returns the server
   */
  async add(opts: StartOptions = {}): Promise<Server> {
    const s = await Server.start(opts);
    this.servers.push(s);
    return s;
  }

  /**
   * Wait until every server lists every server of this cluster at `/`.
   *
   * @param timeoutMs how long
   * @returns this
   */
  async listed(timeoutMs = 5000): Promise<this> {
    const n = this.servers.length;
    await waitFor(() => listEachOther(this.servers), `${n} servers to list each other`, timeoutMs);
    return this;
  }

  /** Stop every server. */
  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all(this.servers.map((s) => s[Symbol.asyncDispose]()));
  }
}

/**
 * Whether each of `servers` lists exactly these servers at `/` (one `ls` through each).
 *
 * @param servers the servers
 * @returns true when they all agree
 */
export async function listEachOther(servers: Server[]): Promise<boolean> {
  const want = JSON.stringify(servers.map((s) => s.path).sort());
  for (const s of servers) {
    await using client = await connect(s.url);
    const got = (await client.walk("/").ls()).map((e) => e.path);
    if (JSON.stringify(got) !== want) return false;
  }
  return true;
}

/**
 * Register the stand-in for tests that cannot run here: it says SKIPPED with the reason,
 * and fails under `CI=true`, where every test must run.
 *
 * @param name what would have run
 * @param why the reason
 */
export function skipTest(name: string, why: string): void {
  Deno.test(`${name}: SKIPPED (${why})`, () => {
    if (Deno.env.get("CI") === "true") throw new Error(`cannot skip under CI=true: ${why}`);
    console.log(`SKIPPED: ${why}`);
  });
}

/**
 * The first of `tools` that does not run (`TOOL --version`), as a reason to skip.
 *
 * @param tools command names
 * @returns why not, or null when all run
 */
export async function missingTool(tools: string[]): Promise<string | null> {
  for (const tool of tools) {
    try {
      await new Deno.Command(tool, { args: ["--version"], stdout: "null", stderr: "null" })
        .output();
    } catch {
      return `${tool} is not installed`;
    }
  }
  return null;
}

/**
 * Poll until `fn` returns a truthy value.
 *
 * @param fn the condition (may be async)
 * @param what what is awaited, for the failure message
 * @param timeoutMs how long
 * @returns the value
 * @throws {Error} when time runs out
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  what: string,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ""}`,
      );
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Write a fresh key file.
 *
 * @param dir where
 * @param name file name
 * @returns its path
 */
export async function keyFile(dir: string, name = "key"): Promise<string> {
  const r = await cli(["keygen"]);
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, r.stdout);
  return path;
}

/**
 * Assert a CLI run failed with exit 1 and exactly one stderr line, matching `re`.
 *
 * @param r the run
 * @param re what the line must match
 */
export function assertOneLineError(r: CliResult, re: RegExp): void {
  const lines = r.stderr.trimEnd().split("\n");
  assert(r.code === 1, `expected exit 1, got ${r.code}; stderr: ${r.stderr}`);
  assert(lines.length === 1 && lines[0] !== "", `expected one stderr line, got: ${r.stderr}`);
  assert(re.test(lines[0]), `stderr ${JSON.stringify(lines[0])} does not match ${re}`);
}
