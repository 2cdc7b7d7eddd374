/**
 * Run one command on many servers at once: start it under a fresh anchor on each
 * selected server, stream its output as lines, feed it the same stdin, collect every
 * exit status, and scrub what was started.
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";
import { isServerName } from "../net/url.ts";
import type { ProcCommand } from "../net/wire/mod.ts";
import type { Anchor } from "./anchor.ts";
import { EXEC_FAILED_STATUS, exitStatus, type Proc, type ProcState } from "./proc.ts";

/** Exit status of a server that could not run the command (unreachable, refused): 255, as ssh. */
export const RUN_FAILED_STATUS = 255;

/** Time between TERM and KILL when a run is stopped (timeout, abort), in ms. */
export const RUN_KILL_AFTER_MS = 2_000;

/** Time limit of starting the command on one server, in ms. */
export const RUN_START_TIMEOUT_MS = 10_000;

/** The anchor a run's processes are started under, below each server: `/X…/run/<id>`. */
export const RUN_ANCHOR = "run";

/**
 * One term of a selector: every member (`/`), or one server by path (`/X…`). Names and
 * tags will be further kinds of term.
 */
export type SelectorTerm = { all: true } | { server: string };

/**
 * Parse a selector: `/` for every member, or server paths `/X…`; none means every member.
 *
 * @example
 * ```ts
 * parseSelector(["/X317c2314a386a9db", "/X0123456789abcdef"]);
 * ```
 *
 * @param terms the selector's words
 * @returns the terms
 * @throws {CircuitError} `bad request` for a word that is neither
 */
export function parseSelector(terms: readonly string[]): SelectorTerm[] {
  if (terms.length === 0) return [{ all: true }];
  return terms.map((t): SelectorTerm => {
    const parts = t.split("/").filter(Boolean);
    if (t.startsWith("/") && parts.length === 0) return { all: true };
    if (t.startsWith("/") && parts.length === 1 && isServerName(parts[0])) {
      return { server: `/${parts[0]}` };
    }
    throw new CircuitError(
      "bad request",
      `Selector "${t}" is neither / (every server) nor a server's path /X followed by 16 hex digits`,
    );
  });
}

/** One line of output from one server. */
export interface RunLine {
  /** The server, `/X…`. */
  server: string;
  /** Which stream. */
  stream: "stdout" | "stderr";
  /** The line, without its newline (a last line without one is given whole). */
  text: string;
}

/** What happened on one server. */
export interface RunResult {
  /** The server, `/X…`. */
  server: string;
  /** The process's anchor, `/X…/run/<id>`. */
  path: string;
  /** Exit code after a normal exit, else null. */
  exit: number | null;
  /** Signal that ended it (`SIGTERM`), else null. */
  signal: string | null;
  /**
   * The exit status as a shell reports it: the code, 128 + n for signal n, 127 when the
   * program could not be executed, {@linkcode RUN_FAILED_STATUS} when the server could not
   * run it.
   */
  status: number;
  /** Why the server could not run it (unreachable, timed out before starting), else null. */
  error: string | null;
  /** Why the run stopped the process while it ran (`timed out`, `interrupted`), else null. */
  stopped: string | null;
  /** All of stdout, with {@linkcode RunOptions.capture}. */
  stdout?: string;
  /** All of stderr, with {@linkcode RunOptions.capture}. */
  stderr?: string;
}

/** Options of {@linkcode run}. */
export interface RunOptions {
  /** Bytes (or text) sent to every process's stdin, then closed; none: stdin closed at once. */
  stdin?: Uint8Array | string;
  /** Stop after this long (TERM, then KILL after {@linkcode RUN_KILL_AFTER_MS}); 0 none. */
  timeoutMs?: number;
  /** Stops the run like the timeout. */
  signal?: AbortSignal;
  /** Most starts under way at once. @default {every server at once} */
  parallel?: number;
  /** Keep each server's whole stdout and stderr in its result. @default {false} */
  capture?: boolean;
  /**
   * Called with every line as it arrives. Without it, lines are kept for the job's
   * iterator until read.
   */
  onLine?: (line: RunLine) => void;
}

/** A run under way: iterate it for lines as they arrive; `results` once all are done. */
export interface RunJob extends AsyncIterable<RunLine> {
  /** The run's anchor name below each server (`run/<id>`). */
  readonly id: string;
  /** One result per selected server, sorted by server. */
  readonly results: Promise<RunResult[]>;
  /**
   * Stop what still runs: TERM, then KILL after {@linkcode RUN_KILL_AFTER_MS}; servers
   * where nothing started yet are not started.
   *
   * @param why said in the results of servers that never started
   */
  stop(why?: string): void;
}

/** What {@linkcode run} needs of a client. */
export interface RunClient {
  /** A handle on an anchor. */
  walk(path: string): Anchor;
}

/**
 * The exit status of a whole run: 0 when every process exited 0, else the highest.
 *
 * @param results what {@linkcode RunJob.results} resolved to
 * @returns the status
 */
export function runStatus(results: readonly RunResult[]): number {
  return Math.max(0, ...results.map((r) => r.status));
}

/**
 * Run a command on every selected server at once.
 *
 * @example Uptime everywhere
 * ```ts
 * import { connect, run, runStatus } from "@circuit/client";
 * const url = Deno.env.get("CIRCUIT_URL")!;
 * await using client = await connect(url);
 * const job = run(client, "/", { Path: "/usr/bin/uptime" });
 * for await (const line of job) console.log(`${line.server}: ${line.text}`);
 * Deno.exit(runStatus(await job.results));
 * ```
 *
 * @param client the connected client
 * @param selector `/` (every member), server paths, or a list of them
 * @param cmd the command; `Scrub` is always true (each process is scrubbed after it exits)
 * @param options stdin, timeout, signal, parallel starts, capture, line callback
 * @returns the job
 * @throws {CircuitError} `bad request` for a bad selector
 */
export function run(
  client: RunClient,
  selector: string | readonly string[],
  cmd: ProcCommand,
  options: RunOptions = {},
): RunJob {
  const terms = parseSelector(typeof selector === "string" ? [selector] : selector);
  return new Run(client, terms, cmd, options);
}

/** Lines kept for the iterator. */
class LineQueue implements AsyncIterable<RunLine> {
  #lines: RunLine[] = [];
  #wake: (() => void) | null = null;
  #done = false;

  push(line: RunLine): void {
    this.#lines.push(line);
    this.#wake?.();
  }

  end(): void {
    this.#done = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<RunLine> {
    for (;;) {
      if (this.#lines.length) {
        yield this.#lines.shift()!;
        continue;
      }
      if (this.#done) return;
      await new Promise<void>((r) => this.#wake = r);
      this.#wake = null;
    }
  }
}

/** A bound on starts under way. */
class Gate {
  #free: number;
  #waiting: Array<() => void> = [];
  constructor(n: number) {
    this.#free = n;
  }
  async enter(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((r) => this.#waiting.push(r));
  }
  leave(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free++;
  }
}

function randomId(): string {
  const b = crypto.getRandomValues(new Uint8Array(8));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

class Run implements RunJob {
  readonly id: string;
  readonly results: Promise<RunResult[]>;
  #client: RunClient;
  #cmd: ProcCommand;
  #o: RunOptions;
  #queue = new LineQueue();
  #stopped: string | null = null;
  #running = new Set<Proc>();
  #killTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(client: RunClient, terms: SelectorTerm[], cmd: ProcCommand, o: RunOptions) {
    this.id = `${RUN_ANCHOR}/${randomId()}`;
    this.#client = client;
    this.#cmd = { ...cmd, Scrub: true };
    this.#o = o;
    this.results = this.#all(terms).finally(() => {
      clearTimeout(this.#killTimer);
      this.#queue.end();
    });
    this.results.catch(() => {}); // a caller that only iterates sees the end of the lines
  }

  [Symbol.asyncIterator](): AsyncIterator<RunLine> {
    return this.#queue[Symbol.asyncIterator]();
  }

  stop(why = "stopped"): void {
    if (this.#stopped !== null) return;
    this.#stopped = why;
    for (const p of this.#running) p.signal("TERM").catch(() => {});
    this.#killTimer = setTimeout(() => {
      for (const p of this.#running) p.signal("KILL").catch(() => {});
    }, RUN_KILL_AFTER_MS);
  }

  async #all(terms: SelectorTerm[]): Promise<RunResult[]> {
    const { timeoutMs, signal } = this.#o;
    const onAbort = () => this.stop("aborted");
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) onAbort();
    const timer = timeoutMs ? setTimeout(() => this.stop("timed out"), timeoutMs) : undefined;
    try {
      const servers = await this.#servers(terms);
      const gate = new Gate(this.#o.parallel && this.#o.parallel > 0 ? this.#o.parallel : Infinity);
      const results = await Promise.all(servers.map((s) => this.#one(s, gate)));
      return results.sort((a, b) => (a.server < b.server ? -1 : a.server > b.server ? 1 : 0));
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  async #servers(terms: SelectorTerm[]): Promise<string[]> {
    const out = new Set<string>();
    for (const t of terms) {
      if ("server" in t) out.add(t.server);
      else {
        const members = await this.#client.walk("/").ls({ timeoutMs: RUN_START_TIMEOUT_MS });
        for (const m of members) out.add(m.path);
      }
    }
    return [...out];
  }

  /** Start, feed, read and wait on one server; never throws. */
  async #one(server: string, gate: Gate): Promise<RunResult> {
    const path = `${server}/${this.id}`;
    const result: RunResult = {
      server,
      path,
      exit: null,
      signal: null,
      status: 0,
      error: null,
      stopped: null,
    };
    const anchor = this.#client.walk(path);
    let proc: Proc | null = null;
    await gate.enter();
    try {
      if (this.#stopped !== null) throw new Error(`not started: ${this.#stopped}`);
      proc = await anchor.makeProc(this.#cmd, { timeoutMs: RUN_START_TIMEOUT_MS });
    } catch (err) {
      result.error = messageOf(err);
      result.status = result.error.startsWith("exec error")
        ? EXEC_FAILED_STATUS
        : RUN_FAILED_STATUS;
      // A program that failed to exec leaves its element; an unreachable server, nothing.
      if (!(err instanceof CircuitError && err.code === "unreachable")) {
        await anchor.scrub({ timeoutMs: RUN_START_TIMEOUT_MS }).catch(() => {});
      }
      return result;
    } finally {
      gate.leave();
    }
    this.#running.add(proc);
    if (this.#stopped !== null) proc.signal("TERM").catch(() => {});
    try {
      const [out, err, state] = await Promise.all([
        this.#lines(server, proc, "stdout"),
        this.#lines(server, proc, "stderr"),
        proc.wait({ timeoutMs: 0 }) as Promise<ProcState>,
        this.#feed(proc),
      ]);
      result.exit = state.ExitCode;
      result.signal = state.Signal;
      result.status = exitStatus(state);
      result.stopped = this.#stopped;
      if (this.#o.capture) Object.assign(result, { stdout: out, stderr: err });
    } catch (err) {
      result.error = messageOf(err);
      result.status = RUN_FAILED_STATUS;
    } finally {
      this.#running.delete(proc);
      // The process scrubbed itself on exit; this ends its retired record at once.
      await anchor.scrub({ timeoutMs: RUN_START_TIMEOUT_MS }).catch(() => {});
    }
    return result;
  }

  async #feed(proc: Proc): Promise<void> {
    const input = this.#o.stdin;
    const bytes = typeof input === "string" ? new TextEncoder().encode(input) : input;
    const w = proc.openStdin({ timeoutMs: 0 }).getWriter();
    // A process that does not read its stdin is not an error (as with a pipe to it).
    try {
      if (bytes?.length) await w.write(bytes);
      await w.close();
    } catch { /* it stopped reading */ }
  }

  /** Read one stream as lines; returns the whole text when capturing. */
  async #lines(server: string, proc: Proc, stream: "stdout" | "stderr"): Promise<string> {
    const { readable } = proc.output(stream, { timeoutMs: 0 });
    const dec = new TextDecoder();
    const emit = this.#o.onLine ?? ((l: RunLine) => this.#queue.push(l));
    let partial = "";
    let all = "";
    const take = (text: string) => {
      if (this.#o.capture) all += text;
      const parts = (partial + text).split("\n");
      partial = parts.pop()!;
      for (const line of parts) emit({ server, stream, text: line });
    };
    for await (const chunk of readable) take(dec.decode(chunk, { stream: true }));
    take(dec.decode());
    if (partial) emit({ server, stream, text: partial });
    return all;
  }
}
