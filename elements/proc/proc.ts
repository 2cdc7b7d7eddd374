/**
 * The process element: an OS process started with Deno.Command in its own process
 * group, with retained stdout and stderr, stdin, signals, wait and scrub.
 *
 * @module
 */

import { CircuitError } from "../../net/errors.ts";
import type { Element, ElementCall, ElementContext, ElementKind } from "../element.ts";
import { OutputBuffer } from "../output.ts";
import { type Cmd, envObject, parseCmd, spawnPath } from "./spec.ts";
import { parseSignal, signalText } from "./signals.ts";

/** A process's lifecycle phase, as `peek` shows it. */
export type Phase = "running" | "exited" | "signaled" | "stopped" | "continued" | "unknown";

/** The `peek` and `wait` shape. */
export interface ProcPeek {
  /** The command. */
  Cmd: Cmd;
  /** Null while running and after exit 0; else why it ended. */
  Exit: { Body: string } | null;
  /** Lifecycle phase. */
  Phase: Phase;
  /** OS process id, or null when it never started. */
  Pid: number | null;
  /** Exit code once exited normally, else null. */
  ExitCode: number | null;
  /** Signal name that ended it, else null. */
  Signal: string | null;
}

/** What `stdout`/`stderr` reply once the stream is over. */
export interface StreamReply {
  /** Bytes dropped before this reader attached (nobody was reading then). */
  Dropped: number;
}

const DEC = new TextDecoder();

/** Bytes read from a process's pipe at once. */
const PIPE_READ_BYTES = 64 * 1024;

/** A running or finished process. */
export class ProcElement implements Element {
  /** `ls -l` kind. */
  readonly kind = "proc";
  #ctx: ElementContext;
  #cmd: Cmd;
  #child: Deno.ChildProcess | null = null;
  #status: Deno.CommandStatus | null = null;
  #execError: string | null = null;
  #exited: Promise<void>;
  #out: OutputBuffer;
  #err: OutputBuffer;
  #stdinTaken = false;
  #scrubbing: Promise<void> | null = null;

  /**
   * Start the process; an exec failure leaves the element in phase `unknown`.
   *
   * @param ctx path, settings, removeSelf
   * @param cmd the command
   */
  constructor(ctx: ElementContext, cmd: Cmd) {
    this.#ctx = ctx;
    this.#cmd = cmd;
    this.#out = new OutputBuffer(ctx.settings.outputBoundBytes);
    this.#err = new OutputBuffer(ctx.settings.outputBoundBytes);
    try {
      this.#child = new Deno.Command(spawnPath(cmd.Path), {
        args: cmd.Args ?? [],
        cwd: cmd.Dir || undefined,
        env: cmd.Env ? envObject(cmd.Env) : undefined,
        clearEnv: cmd.Env !== null,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
        detached: true, // own session and process group, so signals reach its children
      }).spawn();
    } catch (err) {
      this.#execError = `exec error: ${(err as Error).message}`;
      this.#out.close();
      this.#err.close();
      this.#exited = Promise.resolve();
      return;
    }
    const child = this.#child;
    void pump(child.stdout, this.#out);
    void pump(child.stderr, this.#err);
    this.#exited = child.status.then((s) => {
      this.#status = s;
      if (this.#cmd.Scrub) queueMicrotask(() => this.#ctx.removeSelf());
    });
  }

  /** @returns the contract's peek object */
  peek(): ProcPeek {
    const s = this.#status;
    let phase: Phase = "running";
    let exit: ProcPeek["Exit"] = null;
    if (this.#execError) {
      phase = "unknown";
      exit = { Body: this.#execError };
    } else if (s?.signal) {
      phase = "signaled";
      exit = { Body: `signal: ${signalText(s.signal)}` };
    } else if (s) {
      phase = "exited";
      if (s.code !== 0) exit = { Body: `exit status ${s.code}` };
    } else if (this.#child && isStopped(this.#child.pid)) {
      phase = "stopped";
    }
    return {
      Cmd: this.#cmd,
      Exit: exit,
      Phase: phase,
      Pid: this.#child?.pid ?? null,
      ExitCode: s && !s.signal ? s.code : null,
      Signal: s?.signal ?? null,
    };
  }

  /** TERM the process group, KILL it after the grace period, end the streams. */
  scrub(): Promise<void> {
    this.#scrubbing ??= (async () => {
      const child = this.#child;
      if (child) {
        signalGroup(child.pid, "SIGTERM");
        const grace = new Promise<"late">((r) => {
          const t = setTimeout(() => r("late"), this.#ctx.settings.scrubGraceMs);
          void this.#exited.then(() => clearTimeout(t));
        });
        await Promise.race([this.#exited, grace]);
        // KILL what is left: a process that ignored TERM, or children it left behind.
        signalGroup(child.pid, "SIGKILL");
        await this.#exited;
        try {
          await child.stdin.abort();
        } catch { /* closed */ }
      }
      this.#out.close();
      this.#err.close();
    })();
    return this.#scrubbing;
  }

  /**
   * `wait`, `signal {name}`, `stdin` (upload), `stdout`/`stderr` (download).
   *
   * @param op the operation
   * @param call its arguments and streams
   * @returns the reply
   */
  async call(op: string, call: ElementCall): Promise<unknown> {
    switch (op) {
      case "wait":
        await abortable(this.#exited, call.signal);
        return this.peek();
      case "signal":
        return this.#signal(String((call.args as { name?: unknown } | null)?.name));
      case "stdin":
        return await this.#stdin(call);
      case "stdout":
        return await copyOut(this.#out, call);
      case "stderr":
        return await copyOut(this.#err, call);
      default:
        throw new CircuitError("bad request", `A proc has no operation "${op}"`);
    }
  }

  #signal(name: string): null {
    const sig = parseSignal(name);
    if (!this.#child || this.#status) {
      throw new CircuitError(
        "bad request",
        `Signaling ${this.#ctx.path} failed: the process has already exited`,
      );
    }
    signalGroup(this.#child.pid, sig);
    return null;
  }

  async #stdin(call: ElementCall): Promise<null> {
    if (!call.upload) throw new CircuitError("bad request", "stdin needs an upload stream");
    if (!this.#child) {
      throw new CircuitError(
        "bad request",
        `Writing stdin of ${this.#ctx.path} failed: no process`,
      );
    }
    if (this.#stdinTaken) {
      await call.upload.cancel();
      throw new CircuitError(
        "busy",
        `Writing stdin of ${this.#ctx.path} failed: stdin is already taken`,
      );
    }
    this.#stdinTaken = true;
    try {
      await call.upload.pipeTo(this.#child.stdin, { signal: call.signal });
    } catch (err) {
      // A process that exited or closed stdin is not the writer's error.
      if (call.signal.aborted) throw err;
      try {
        await this.#child.stdin.abort();
      } catch { /* closed */ }
    }
    return null;
  }
}

/**
 * Copy a pipe into an output buffer until it ends. One buffer is read into again and
 * again (the output buffer copies), so output nobody reads makes no garbage.
 */
async function pump(from: ReadableStream<Uint8Array>, to: OutputBuffer): Promise<void> {
  const reader = from.getReader({ mode: "byob" });
  let buf = new Uint8Array(PIPE_READ_BYTES);
  try {
    for (;;) {
      const { done, value } = await reader.read(buf);
      if (done || !value) break;
      await to.write(value);
      buf = new Uint8Array(value.buffer);
    }
  } catch {
    /* pipe error: treat as the end */
  } finally {
    to.close();
  }
}

/** Stream retained output to a caller until the stream ends or the caller goes. */
async function copyOut(buf: OutputBuffer, call: ElementCall): Promise<StreamReply> {
  if (!call.download) throw new CircuitError("bad request", "Reading output needs a download");
  const reader = buf.reader();
  const w = call.download.getWriter();
  try {
    for (let c = await reader.read(call.signal); c; c = await reader.read(call.signal)) {
      await w.write(c);
    }
    await w.close();
  } catch (err) {
    await w.abort().catch(() => {});
    if (call.signal.aborted) throw err;
    throw new CircuitError("closed", "The reader went away");
  } finally {
    reader.close();
  }
  return { Dropped: reader.droppedBefore };
}

function signalGroup(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(-pid, sig);
  } catch { /* the group is gone */ }
}

function isStopped(pid: number): boolean {
  try {
    const stat = DEC.decode(Deno.readFileSync(`/proc/${pid}/stat`));
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "T";
  } catch {
    return false;
  }
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** The `proc` element kind: spec `{cmd}`, reply the peek. */
export const procKind: ElementKind = {
  name: "proc",
  make(ctx: ElementContext, spec: unknown): Promise<Element> {
    const cmd = parseCmd((spec as { cmd?: unknown } | null)?.cmd);
    return Promise.resolve(new ProcElement(ctx, cmd));
  },
};
