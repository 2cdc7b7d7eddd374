/**
 * The process element: an OS process started with Deno.Command in its own process
 * group, with retained stdout and stderr, stdin, signals, wait and scrub.
 *
 * @module
 */

import { CircuitError } from "../../net/errors.ts";
import { PROC_KIND, ProcOp, type SignalArgs } from "../../net/wire/mod.ts";
import type { Element, ElementCall, ElementContext, ElementKind } from "../element.ts";
import { abortable, Stdio } from "../stdio.ts";
import { type Cmd, envObject, parseCmd, spawnPath } from "./spec.ts";
import { parseSignal, signalText } from "./signals.ts";
import { execProblem, setsidPath } from "./launch.ts";
import { retirement } from "./retire.ts";

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

const DEC = new TextDecoder();

/** A running or finished process. */
export class ProcElement implements Element {
  /** `ls -l` kind. */
  readonly kind = PROC_KIND;
  #ctx: ElementContext;
  #cmd: Cmd;
  #child: Deno.ChildProcess | null = null;
  #status: Deno.CommandStatus | null = null;
  #execError: string | null = null;
  /** The process has been stopped at some time: once it runs again its phase is `continued`. */
  #beenStopped = false;
  /** We sent SIGSTOP (which always stops). */
  #stopSent = false;
  #exited: Promise<void>;
  #stdio: Stdio;
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
    this.#stdio = new Stdio(
      ctx.path,
      ctx.settings.outputBoundBytes,
      ctx.settings.outputHoldMs,
    );
    const path = spawnPath(cmd.Path);
    const launcher = setsidPath();
    try {
      const problem = launcher ? execProblem(path, cmd.Dir || undefined) : null;
      if (problem) throw new Error(problem);
      // Own session and process group, so signals reach its children (launch.ts).
      this.#child = new Deno.Command(launcher ?? path, {
        args: launcher ? [path, ...cmd.Args ?? []] : cmd.Args ?? [],
        cwd: cmd.Dir || undefined,
        env: cmd.Env ? envObject(cmd.Env) : undefined,
        clearEnv: cmd.Env !== null,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
        detached: launcher === null,
      }).spawn();
    } catch (err) {
      this.#execError = `exec error: ${(err as Error).message}`;
      this.#stdio.close();
      this.#exited = Promise.resolve();
      return;
    }
    const child = this.#child;
    this.#stdio.attach(child);
    this.#exited = child.status.then((s) => {
      this.#status = s;
      if (this.#cmd.Scrub) queueMicrotask(() => this.#retire());
    });
  }

  /**
   * Leave the namespace after exit (`Scrub: true`), but stay reachable at the path for
   * `wait`, `stdout` and `stderr` for a while (see `retire.ts`).
   */
  #retire(): void {
    // An explicit scrub removes it for good (the core does that once scrub returns).
    if (this.#scrubbing) return;
    if (this.#ctx.retireSelf) this.#ctx.retireSelf(retirement(this.#stdio));
    else this.#ctx.removeSelf();
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
      this.#beenStopped = true;
    } else if (this.#beenStopped) {
      phase = "continued"; // running again after a stop, as the original's wait status says
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
        signalGroup(child.pid, "SIGTERM", this.#status === null);
        const grace = new Promise<"late">((r) => {
          const t = setTimeout(() => r("late"), this.#ctx.settings.scrubGraceMs);
          void this.#exited.then(() => clearTimeout(t));
        });
        await Promise.race([this.#exited, grace]);
        // KILL what is left: a process that ignored TERM, or children it left behind.
        signalGroup(child.pid, "SIGKILL", false);
        await this.#exited;
        await this.#stdio.closeStdin();
      }
      this.#stdio.close();
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
      case ProcOp.WAIT:
        await abortable(this.#exited, call.signal);
        return this.peek();
      case ProcOp.SIGNAL:
        return this.#signal(String((call.args as Partial<SignalArgs> | null)?.name));
      case ProcOp.STDIN:
      case ProcOp.STDOUT:
      case ProcOp.STDERR:
        return await this.#stdio.serve(op, call);
      default:
        throw new CircuitError("bad request", `A proc has no operation "${op}"`);
    }
  }

  #signal(name: string): null {
    const sig = parseSignal(name);
    if (this.#execError) {
      throw new CircuitError(
        "bad request",
        `Signaling ${this.#ctx.path} failed: the process never started (${this.#execError})`,
      );
    }
    if (!this.#child || this.#status) {
      throw new CircuitError(
        "bad request",
        `Signaling ${this.#ctx.path} failed: the process has already exited`,
      );
    }
    // A CONT to a process stopped now (or sent SIGSTOP, which cannot be caught, and not
    // yet seen stopped) makes the phase `continued`, even if no peek saw it stopped.
    if (sig === "SIGCONT" && (this.#stopSent || isStopped(this.#child.pid))) {
      this.#beenStopped = true;
    }
    if (sig === "SIGSTOP") this.#stopSent = true;
    signalGroup(this.#child.pid, sig, true);
    return null;
  }
}

/**
 * Signal a process group.
 *
 * @param pid the group's leader
 * @param sig the signal
 * @param running the leader has not been reaped (its PID cannot belong to another process)
 */
function signalGroup(pid: number, sig: Deno.Signal, running: boolean): void {
  try {
    Deno.kill(-pid, sig);
  } catch {
    // No such group: gone, or started through setsid a moment ago and not yet its own
    // group; then the process itself (setsid, about to exec) takes the signal.
    if (!running) return;
    try {
      Deno.kill(pid, sig);
    } catch { /* gone */ }
  }
}

function isStopped(pid: number): boolean {
  try {
    const stat = DEC.decode(Deno.readFileSync(`/proc/${pid}/stat`));
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "T";
  } catch {
    return false;
  }
}

/** The `proc` element kind: spec `{cmd}`, reply the peek. */
export const procKind: ElementKind = {
  name: PROC_KIND,
  make(ctx: ElementContext, spec: unknown): Promise<Element> {
    const cmd = parseCmd((spec as { cmd?: unknown } | null)?.cmd); // a ProcSpec, unchecked
    return Promise.resolve(new ProcElement(ctx, cmd));
  },
};
