/**
 * Container handles: the same shape as a process, on a server started with `--docker`.
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";
import { type OutputStream, Proc } from "./proc.ts";
import type { CallOptions, ElementAnchor } from "./types.ts";

/** A container run; keys as in the CLI's JSON (`mkdkr`). */
export interface ContainerRun {
  /** Image name (must be present on the engine; nothing is pulled). */
  Image: string;
  /** Memory limit in bytes. */
  Memory?: number;
  /** Relative CPU weight. */
  CpuShares?: number;
  /** LXC options: must be empty (Docker removed the LXC driver). */
  Lxc?: string[];
  /** Bind mounts, `/host:/container[:ro|rw]`. */
  Volume?: string[];
  /** Working directory in the container. */
  Dir?: string;
  /** Entrypoint override. */
  Entry?: string;
  /** `K=V` entries. */
  Env?: string[];
  /** The program. */
  Path?: string;
  /** Its arguments. */
  Args?: string[];
  /** Remove the element once the container has exited. */
  Scrub?: boolean;
}

/** A container's state: the engine's `docker inspect` object. */
export interface ContainerState {
  /** Container id. */
  Id: string;
  /** Container name, `/circuit-X…-…`. */
  Name: string;
  /** Run state. */
  State: {
    Status: string;
    Running: boolean;
    ExitCode: number;
    Error: string;
    [key: string]: unknown;
  };
  /** Everything else `docker inspect` shows. */
  [key: string]: unknown;
}

/**
 * A docker element; streams, signals and scrub work as for {@linkcode Proc}.
 *
 * @example Run a command in a container
 * ```ts ignore
 * const c = await anchor.makeDocker({ Image: "busybox", Path: "/bin/echo", Args: ["hi"] });
 * console.log(await new Response(c.stdout).text()); // "hi\n"
 * console.log((await c.wait()).State.ExitCode); // 0
 * await c.scrub(); // stops and removes the container
 * ```
 */
export class Container {
  /** Where the container's element lives. */
  readonly anchor: ElementAnchor;
  #io: Proc;

  /**
   * Wrap an anchor that holds a container.
   *
   * @param anchor the anchor
   */
  constructor(anchor: ElementAnchor) {
    this.anchor = anchor;
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
    return await this.anchor.element("wait", null, { timeoutMs: 0, ...options }) as ContainerState;
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

  /**
   * The container's `docker inspect` object.
   *
   * @param options signal, timeout
   * @returns the state
   */
  async peek(options: CallOptions = {}): Promise<ContainerState> {
    const v = await this.anchor.peek(options);
    if (v === null) throw new CircuitError("not found", `No element at "${this.anchor.path}"`);
    return v as ContainerState;
  }

  /**
   * Stop the container (TERM, KILL after the server's grace period) and remove it.
   *
   * @param options signal, timeout
   */
  async scrub(options: CallOptions = {}): Promise<void> {
    await this.anchor.scrub(options);
  }
}
