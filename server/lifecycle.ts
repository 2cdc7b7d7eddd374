/**
 * A server's lifecycle: what it holds is released, on stop, in a fixed order of phases,
 * whichever of them it got to acquire. The same stop serves SIGTERM, SIGINT, `suicide`,
 * `RunningServer.stop()` and a start that fails half way.
 *
 * ```ts ignore
 * const lifecycle = new Lifecycle({ log });
 * lifecycle.onStop("var dir", () => varDir.release());
 * await lifecycle.stop();
 * ```
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";

/**
 * The phases of a stop, in the order they run: first the cluster hears that we leave,
 * then elements end, then the doors close, and the var directory is released last.
 */
export const STOP_PHASES = [
  /** Stop announcing on the multicast group. */
  "discovery",
  /** Announce leave (unless quiet) and stop the membership protocol. */
  "membership",
  /** Close the connections we dialed. */
  "mesh",
  /** Scrub every element at once (processes get TERM, then KILL after the grace). */
  "elements",
  /** Close the listener. */
  "listener",
  /** Send GOAWAY on every accepted connection. */
  "connections",
  /** Flush the rate-limited log lines. */
  "log throttles",
  /** Close the operation log. */
  "oplog",
  /** Close the server log. */
  "log file",
  /** Unlock the var directory. */
  "var dir",
] as const;

/** One phase of a stop. */
export type StopPhase = typeof STOP_PHASES[number];

/**
 * A stop step. `quiet` is true when a start failed: nothing is announced then.
 *
 * @returns when the step is done
 */
export type StopStep = (quiet: boolean) => void | Promise<void>;

/** Options of {@linkcode Lifecycle}. */
export interface LifecycleOptions {
  /** Where "stopping" is logged; set once the log is. */
  log?: Logger;
}

/** Stops a server once, in phases. */
export class Lifecycle {
  #steps = new Map<StopPhase, StopStep[]>();
  #stopping: Promise<void> | null = null;
  #onStopped!: () => void;
  #log: Logger | undefined;
  /** Resolves when the server has stopped. */
  readonly stopped: Promise<void> = new Promise<void>((r) => (this.#onStopped = r));

  /**
   * A lifecycle with no stop steps yet.
   *
   * @param options the log
   */
  constructor(options: LifecycleOptions = {}) {
    this.#log = options.log;
  }

  /** The server log, once set up. */
  set log(log: Logger) {
    this.#log = log;
  }

  /**
   * Run `step` in `phase` of the stop, after the steps already added to it.
   *
   * @param phase when it runs
   * @param step what it does
   */
  onStop(phase: StopPhase, step: StopStep): void {
    const steps = this.#steps.get(phase) ?? [];
    steps.push(step);
    this.#steps.set(phase, steps);
  }

  /**
   * Stop: run every phase's steps in order, once however often called.
   *
   * @param quiet a failed start: log nothing, announce nothing
   * @returns when stopped
   */
  stop(quiet = false): Promise<void> {
    this.#stopping ??= (async () => {
      if (!quiet) this.#log?.info("stopping");
      for (const phase of STOP_PHASES) {
        for (const step of this.#steps.get(phase) ?? []) await step(quiet);
      }
      this.#onStopped();
    })();
    return this.#stopping;
  }

  /** Stop cleanly on SIGTERM and SIGINT. */
  handleSignals(): void {
    for (const sig of ["SIGTERM", "SIGINT"] as const) {
      Deno.addSignalListener(sig, () => void this.stop());
    }
  }
}
