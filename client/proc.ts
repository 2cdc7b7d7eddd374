/**
 * Process handles: start a program on any server, stream its input and output, signal
 * it, wait for it.
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";
import {
  type OutputReply,
  type ProcCommand,
  ProcOp,
  type ProcState,
  type SignalArgs,
} from "../net/wire/mod.ts";
import { ElementHandle } from "./handle.ts";
import type { CallOptions } from "./types.ts";

export type { ProcCommand, ProcState };

/** A stream of a process's output and how much of it was lost before it. */
export interface OutputStream {
  /** The bytes, from the oldest retained to the end of the stream. */
  readable: ReadableStream<Uint8Array>;
  /** Once the stream ends: bytes dropped before it (nobody was reading then). */
  dropped: Promise<number>;
}

/**
 * The download of a call, failing with the call's own error (e.g. `not found`) rather
 * than the bare stream reset the server sends when the call fails.
 *
 * @param download the call's download stream
 * @param result the call's reply
 * @returns the same bytes
 */
function withCallError(
  download: ReadableStream<Uint8Array>,
  result: Promise<unknown>,
): ReadableStream<Uint8Array> {
  const source = download.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await source.read();
      } catch (err) {
        // The reply follows the reset; it says why the call failed.
        controller.error(await result.then(() => err, (why) => why));
        return;
      }
      if (r.done) controller.close();
      else controller.enqueue(r.value);
    },
    cancel(reason) {
      return source.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/**
 * Linux signal numbers, for exit statuses: a process ended by signal n exits, as a shell
 * reports it, with 128 + n.
 */
const SIGNAL_NUMBERS: Readonly<Record<string, number>> = Object.freeze({
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPWR: 30,
  SIGSYS: 31,
});

/** Exit status of a process that never started (exec failed), as a shell's `command not found`. */
export const EXEC_FAILED_STATUS = 127;

/**
 * The exit status a shell would report for a process's final state: its exit code, 128 + n
 * for signal n (Linux numbers), {@linkcode EXEC_FAILED_STATUS} when it never started, and
 * 0 while it runs.
 *
 * @example Fail a script when a job failed
 * ```ts
 * import { connect } from "@circuit/client";
 * await using client = await connect(Deno.env.get("CIRCUIT_URL")!);
 * const proc = await client.walk(`${client.server}/job`).makeProc({ Path: "/bin/true" });
 * const status = exitStatus(await proc.wait());
 * if (status !== 0) Deno.exit(status);
 * ```
 *
 * @param state what `wait` or `peek` returned
 * @returns the status, 0 to 255
 */
export function exitStatus(state: ProcState): number {
  if (state.Phase === "unknown" && state.Exit) return EXEC_FAILED_STATUS;
  if (state.Signal) return 128 + (SIGNAL_NUMBERS[state.Signal] ?? 0);
  return (state.ExitCode ?? 0) & 0xff;
}

/** Errors that say only that the process stopped reading its stdin. */
const STDIN_CLOSED = new WeakSet<object>();

/**
 * Whether an error from writing {@linkcode Proc.stdin} says only that the process no
 * longer reads its stdin (it closed it or exited): what a pipe's writer hears as EPIPE.
 *
 * @param err the error
 * @returns true for that error
 */
export function isStdinClosed(err: unknown): boolean {
  return typeof err === "object" && err !== null && STDIN_CLOSED.has(err);
}

/**
 * An upload whose failures are the call's: the server's reason rather than a reset
 * stream. Once the call has failed, the next write and the close reject with its error.
 * When the server ended the call well but the process stopped reading (it closed its
 * stdin or exited), a write fails with `closed` (see {@linkcode isStdinClosed}), as a
 * pipe to such a process fails; the stream is then errored and needs no close.
 */
function withCallResult(
  upload: WritableStream<Uint8Array>,
  result: Promise<unknown>,
  path: string,
): WritableStream<Uint8Array> {
  const sink = upload.getWriter();
  let failed: unknown = null;
  const stopped = () => {
    const e = new CircuitError(
      "closed",
      `Writing stdin of ${path}: the process no longer reads it`,
    );
    STDIN_CLOSED.add(e);
    return e;
  };
  result.catch((err) => {
    failed = err;
    sink.abort(err).catch(() => {}); // a write waiting for credit fails now
  });
  // Why the upload broke: the call's error if it failed, else null (nobody reads).
  const why = (err: unknown) => result.then(() => null, (e) => e ?? err);
  return new WritableStream<Uint8Array>({
    // A write that fails errors this stream: later writes and the close reject with
    // the same error, and no close is needed after it.
    async write(chunk) {
      if (failed) throw failed;
      try {
        await sink.write(chunk);
      } catch (err) {
        if (err instanceof CircuitError && err.code === "bad request") throw err; // not bytes
        throw (await why(err)) ?? stopped();
      }
    },
    async close() {
      if (failed) throw failed;
      try {
        await sink.close();
      } catch (err) {
        const reason = await why(err);
        if (reason) throw reason;
      }
      await result;
    },
    async abort(reason) {
      await sink.abort(reason).catch(() => {});
    },
  }, { highWaterMark: 1 });
}

/**
 * A process element. Its streams are opened when first used. Scrubbing it kills the
 * process group (TERM, then KILL after the server's grace period) and removes the element.
 *
 * @example Run a command and read its output
 * ```ts
 * import { connect } from "@circuit/client";
 * const url = Deno.env.get("CIRCUIT_URL")!;
 * await using client = await connect(url);
 * const proc = await client.walk(`${client.server}/job`).makeProc({ Path: "/bin/ls", Args: ["/"] });
 * console.log(await new Response(proc.stdout).text());
 * console.log((await proc.wait()).Phase); // "exited"
 * await proc.scrub();
 * ```
 */
export class Proc extends ElementHandle<ProcState> {
  #stdin: WritableStream<Uint8Array> | null = null;
  #stdout: ReadableStream<Uint8Array> | null = null;
  #stderr: ReadableStream<Uint8Array> | null = null;

  /**
   * The process's standard input; write as often as needed, close to send EOF. Only one
   * writer per process: a second one fails with `busy`. A failure (`busy`, `not found`,
   * no process there) rejects the next write or the close with the server's reason. Once
   * the process no longer reads its stdin (closed it, or exited) writes fail with
   * `closed` ({@linkcode isStdinClosed} tells that error apart), as a pipe's would.
   */
  get stdin(): WritableStream<Uint8Array> {
    return this.#stdin ??= this.openStdin();
  }

  /**
   * A writer of the process's standard input, like {@linkcode Proc.stdin} but with a
   * signal or time limit for the whole of it.
   *
   * @param options signal, timeout (default: none)
   * @returns the stream; closing it resolves once the process has its EOF
   */
  openStdin(options: CallOptions = {}): WritableStream<Uint8Array> {
    const call = this.anchor.open(ProcOp.STDIN, null, { ...options, upload: true });
    return withCallResult(call.upload!, call.result, this.anchor.path);
  }

  /** The process's standard output, from the oldest retained byte, as it is written. */
  get stdout(): ReadableStream<Uint8Array> {
    return this.#stdout ??= this.output("stdout").readable;
  }

  /** The process's standard error, like {@linkcode Proc.stdout}. */
  get stderr(): ReadableStream<Uint8Array> {
    return this.#stderr ??= this.output("stderr").readable;
  }

  /**
   * A new reader of stdout or stderr; any number may read at once.
   *
   * @param which the stream
   * @param options signal
   * @returns the bytes and, at the end, how many were dropped before them
   */
  output(which: "stdout" | "stderr", options: CallOptions = {}): OutputStream {
    const op = which === "stdout" ? ProcOp.STDOUT : ProcOp.STDERR;
    const call = this.anchor.open(op, null, { ...options, download: true });
    const dropped = call.result.then((r) => Number((r as Partial<OutputReply>)?.Dropped ?? 0));
    dropped.catch(() => {}); // a caller that only reads the bytes must not see it rejected
    return { readable: withCallError(call.download!, call.result), dropped };
  }

  /**
   * Wait until the process has exited (whether or not anyone reads its output).
   *
   * @param options signal, timeout (default: none)
   * @returns its final state
   * @throws {CircuitError} `not found` when the element is gone; `timeout`, `aborted`
   */
  async wait(options: CallOptions = {}): Promise<ProcState> {
    return await this.anchor.element(ProcOp.WAIT, null, { timeoutMs: 0, ...options }) as ProcState;
  }

  /**
   * Send a signal to the process's group.
   *
   * @param name e.g. `TERM`, `sigkill`, `HUP` (case-insensitive, `SIG` optional)
   * @param options signal, timeout
   * @throws {CircuitError} `bad request` for an unknown name or an exited process
   */
  async signal(name: string, options: CallOptions = {}): Promise<void> {
    await this.anchor.element(ProcOp.SIGNAL, { name } satisfies SignalArgs, options);
  }
}
