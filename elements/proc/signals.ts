/**
 * Signal names as the CLI takes them, and Go's wording of signals in exit messages.
 *
 * @module
 */

import { CircuitError } from "../../net/errors.ts";

/** Signals `circuit signal` accepts, with Go's `syscall.Signal.String()` text. */
export const SIGNALS: Readonly<Record<string, string>> = Object.freeze({
  SIGABRT: "aborted",
  SIGALRM: "alarm clock",
  SIGBUS: "bus error",
  SIGCHLD: "child exited",
  SIGCONT: "continued",
  SIGFPE: "floating point exception",
  SIGHUP: "hangup",
  SIGILL: "illegal instruction",
  SIGINT: "interrupt",
  SIGIO: "I/O possible",
  SIGKILL: "killed",
  SIGPIPE: "broken pipe",
  SIGPROF: "profiling timer expired",
  SIGQUIT: "quit",
  SIGSEGV: "segmentation fault",
  SIGSTOP: "stopped (signal)",
  SIGSYS: "bad system call",
  SIGTERM: "terminated",
  SIGTRAP: "trace/breakpoint trap",
  SIGTSTP: "stopped",
  SIGTTIN: "stopped (tty input)",
  SIGTTOU: "stopped (tty output)",
  SIGURG: "urgent I/O condition",
  SIGUSR1: "user defined signal 1",
  SIGUSR2: "user defined signal 2",
  SIGVTALRM: "virtual timer expired",
  SIGWINCH: "window changed",
  SIGXCPU: "CPU time limit exceeded",
  SIGXFSZ: "file size limit exceeded",
});

/**
 * Parse a signal name: case-insensitive, with or without `SIG`.
 *
 * @param name e.g. `term`, `SIGTERM`, `Kill`
 * @returns the canonical name, e.g. `SIGTERM`
 * @throws {CircuitError} `bad request` naming the accepted signals
 */
export function parseSignal(name: string): Deno.Signal {
  const up = String(name).trim().toUpperCase();
  const full = up.startsWith("SIG") ? up : `SIG${up}`;
  if (!Object.hasOwn(SIGNALS, full)) {
    const names = Object.keys(SIGNALS).map((s) => s.slice(3)).join(" ");
    throw new CircuitError("bad request", `Unknown signal "${name}"; use one of: ${names}`);
  }
  return full as Deno.Signal;
}

/**
 * Go's text for a signal, e.g. `terminated` for SIGTERM.
 *
 * @param signal the canonical name
 * @returns the text
 */
export function signalText(signal: string): string {
  return SIGNALS[signal] ?? signal.toLowerCase();
}
