/**
 * The standard streams of a child process (an OS process or a `docker start -a -i`):
 * stdout and stderr pumped into retained {@linkcode OutputBuffer}s, stdin taken by one
 * writer, and the `stdin`, `stdout` and `stderr` operations that process-like elements
 * share.
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";
import { type OutputReply, ProcOp, type StdioOpName } from "../net/wire/mod.ts";
import type { ElementCall } from "./element.ts";
import { OutputBuffer } from "./output.ts";

/** Bytes read from a child's pipe at once. */
const PIPE_READ_BYTES = 64 * 1024;

/** What `stdout`/`stderr` reply once the stream is over (the wire's `OutputReply`). */
export type StreamReply = OutputReply;

/** The pipes of a spawned child. */
export interface ChildPipes {
  /** The child's stdin. */
  stdin: WritableStream<Uint8Array>;
  /** The child's stdout. */
  stdout: ReadableStream<Uint8Array>;
  /** The child's stderr. */
  stderr: ReadableStream<Uint8Array>;
}

/** Standard streams of one process-like element. */
export class Stdio {
  /** Retained stdout. */
  readonly out: OutputBuffer;
  /** Retained stderr. */
  readonly err: OutputBuffer;
  #path: string;
  #stdin: WritableStream<Uint8Array> | null = null;
  #stdinTaken = false;
  /** The writer that took stdin has finished: stdin is closed for good. */
  #stdinEnded = false;

  /**
   * @param path the element's path, for messages
   * @param boundBytes bytes retained per stream
   * @param holdMs how long a full stream waits for its first reader rather than drop
   */
  constructor(path: string, boundBytes: number, holdMs = 0) {
    this.#path = path;
    this.out = new OutputBuffer(boundBytes, holdMs);
    this.err = new OutputBuffer(boundBytes, holdMs);
  }

  /**
   * Start pumping a child's output; stdin becomes available to `stdin`.
   *
   * @param child the spawned child's pipes
   */
  attach(child: ChildPipes): void {
    this.#stdin = child.stdin;
    void pump(child.stdout, this.out);
    void pump(child.stderr, this.err);
  }

  /** There will be no output (the child never started, or was scrubbed). */
  close(): void {
    this.out.close();
    this.err.close();
  }

  /**
   * Resolves once no reader is attached to stdout or stderr.
   *
   * @returns when the last reader of either has closed
   */
  async idle(): Promise<void> {
    while (this.out.readerCount > 0 || this.err.readerCount > 0) {
      await Promise.all([this.out.idle(), this.err.idle()]);
    }
  }

  /** Close the child's stdin if nobody did. */
  async closeStdin(): Promise<void> {
    try {
      await this.#stdin?.abort();
    } catch { /* closed */ }
  }

  /**
   * Serve `stdin` (upload), `stdout` or `stderr` (download).
   *
   * @param op the stream
   * @param call its streams
   * @returns null for stdin, {@linkcode StreamReply} for output
   */
  serve(op: StdioOpName, call: ElementCall): Promise<unknown> {
    if (op === ProcOp.STDIN) return this.#writeStdin(call);
    return copyOut(op === ProcOp.STDOUT ? this.out : this.err, call);
  }

  async #writeStdin(call: ElementCall): Promise<null> {
    if (!call.up) throw new CircuitError("bad request", "stdin needs an upload stream");
    const upload = call.up.stream;
    const stdin = this.#stdin;
    if (!stdin) {
      throw new CircuitError("bad request", `Writing stdin of ${this.#path} failed: nothing runs`);
    }
    if (this.#stdinTaken) {
      await upload.cancel();
      throw new CircuitError(
        "busy",
        `Writing stdin of ${this.#path} failed: ${
          this.#stdinEnded ? "an earlier writer already closed stdin" : "stdin is already taken"
        }`,
      );
    }
    this.#stdinTaken = true;
    try {
      await upload.pipeTo(stdin, { signal: call.signal });
    } catch (err) {
      if (call.signal.aborted) throw err;
      await this.closeStdin();
      // The upload broke (the writer reset it, or sent something that is not bytes): the
      // call fails, so the writer does not take a truncated input for a whole one. A child
      // that exited or closed its stdin (a Deno error on the pipe) is not its error.
      if (err instanceof CircuitError) throw err;
    } finally {
      this.#stdinEnded = true;
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
  if (!call.down) throw new CircuitError("bad request", "Reading output needs a download");
  const reader = buf.reader();
  const w = call.down.stream.getWriter();
  try {
    for (let c = await reader.read(call.signal); c; c = await reader.read(call.signal)) {
      await w.write(c); // a view into the buffer: the mux has packed (copied) it once this resolves
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

/**
 * Wait for a promise unless the caller's signal aborts first.
 *
 * @param p what to wait for
 * @param signal the caller's signal
 * @returns the promise's value
 * @throws the signal's reason when it aborts first
 */
export function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
