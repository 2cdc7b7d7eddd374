/**
 * Container handles: the same shape as a process, on a server started with `--docker`.
 *
 * @module
 */

import { type ContainerRun, type ContainerState, ProcOp } from "../net/wire/mod.ts";
import { ElementHandle } from "./handle.ts";
import { type OutputStream, Proc } from "./proc.ts";
import type { CallOptions, ElementAnchor } from "./types.ts";

export type { ContainerRun, ContainerState };

/**
 * A docker element; streams, signals and scrub work as for {@linkcode Proc}: scrubbing
 * it stops the container (TERM, KILL after the server's grace period) and removes it.
 *
 * @example Run a command in a container
 * ```ts
 * import { connect } from "@circuit/client";
 * await using client = await connect(Deno.env.get("CIRCUIT_URL")!);
 * const anchor = client.walk(`${client.server}/example`);
 * const c = await anchor.makeDocker({ Image: "busybox", Path: "/bin/echo", Args: ["hi"] });
 * console.log(await new Response(c.stdout).text()); // "hi\n"
 * console.log((await c.wait()).State.ExitCode); // 0
 * await c.scrub(); // stops and removes the container
 * ```
 */
export class Container extends ElementHandle<ContainerState> {
  /** The same operations as a process's, on the same anchor. */
  #io: Proc;

  /**
   * Wrap an anchor that holds a container.
   *
   * @param anchor the anchor
   */
  constructor(anchor: ElementAnchor) {
    super(anchor);
    this.#io = new Proc(anchor);
  }

  /** The container's stdin; close it to send EOF. */
  get stdin(): WritableStream<Uint8Array> {
    return this.#io.stdin;
  }

  /** The container's stdout, from the oldest retained byte. */
  get stdout(): ReadableStream<Uint8Array> {
    return this.#io.stdout;
  }

  /** The container's stderr, from the oldest retained byte. */
  get stderr(): ReadableStream<Uint8Array> {
    return this.#io.stderr;
  }

  /**
   * A new reader of stdout or stderr.
   *
   * @param which the stream
   * @param options signal
   * @returns the bytes and how many were dropped before them
   */
  output(which: "stdout" | "stderr", options: CallOptions = {}): OutputStream {
    return this.#io.output(which, options);
  }

  /**
   * Wait until the container has exited.
   *
   * @param options signal, timeout (default none)
   * @returns its `docker inspect` object (exit code in `State.ExitCode`)
   */
  async wait(options: CallOptions = {}): Promise<ContainerState> {
    return await this.anchor.element(ProcOp.WAIT, null, {
      timeoutMs: 0,
      ...options,
    }) as ContainerState;
  }

  /**
   * Send a signal to the container's main process.
   *
   * @param name e.g. `TERM` (case-insensitive, `SIG` optional)
   * @param options signal, timeout
   * @throws {CircuitError} `bad request` for an unknown name or a stopped container
   */
  async signal(name: string, options: CallOptions = {}): Promise<void> {
    await this.#io.signal(name, options);
  }
}
