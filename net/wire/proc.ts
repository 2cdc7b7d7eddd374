/**
 * The process kind on the wire, and the operations every process-like element (a
 * process, a container) serves alike.
 *
 * - `wait`: → the state once the process has exited ({@linkcode ProcState} for a
 *   process).
 * - `signal`: args {@linkcode SignalArgs} → null.
 * - `stdin`: the bytes as the call's upload → null.
 * - `stdout`, `stderr`: the bytes on the download → {@linkcode OutputReply}.
 *
 * @module
 */

/** The kind name `make` and `ls -l` use for processes. */
export const PROC_KIND = "proc";

/** The operations of a process-like element (`proc`, `docker`). */
export const ProcOp = {
  /** Wait until it has exited; replies its state. */
  WAIT: "wait",
  /** Send a signal: args {@linkcode SignalArgs}. */
  SIGNAL: "signal",
  /** Write its standard input: the call's upload. */
  STDIN: "stdin",
  /** Read its standard output: the call's download. */
  STDOUT: "stdout",
  /** Read its standard error: the call's download. */
  STDERR: "stderr",
} as const;

/** A process-like element's operation name. */
export type ProcOpName = typeof ProcOp[keyof typeof ProcOp];

/** The operations that stream a process's standard input or output. */
export type StdioOpName = typeof ProcOp.STDIN | typeof ProcOp.STDOUT | typeof ProcOp.STDERR;

/** A process command; keys as in the CLI's JSON and in `peek`'s `Cmd`. */
export interface ProcCommand {
  /** `K=V` entries; absent or null inherits the server's environment. */
  Env?: string[] | null;
  /** Working directory; absent for the server's. */
  Dir?: string;
  /** The program, used as given: no $PATH search. */
  Path: string;
  /** Arguments after the program name. */
  Args?: string[];
  /** Remove the element once the process has exited. @default {false} */
  Scrub?: boolean;
}

/** What `make` takes for a process (keys of `cmd` matched case-insensitively). */
export interface ProcSpec {
  /** The command. */
  cmd: ProcCommand;
}

/** A process's state, as `peek` and `wait` return it. */
export interface ProcState {
  /** The command, with every key present. */
  Cmd: Required<ProcCommand>;
  /** Null while running and after exit 0; else `{Body: "exit status 3"}` and the like. */
  Exit: { Body: string } | null;
  /** `running`, `exited`, `signaled`, `stopped`, `continued` or `unknown`. */
  Phase: "running" | "exited" | "signaled" | "stopped" | "continued" | "unknown";
  /** OS process id, or null when it never started. */
  Pid: number | null;
  /** Exit code after a normal exit, else null. */
  ExitCode: number | null;
  /** The signal that ended it (e.g. `SIGTERM`), else null. */
  Signal: string | null;
}

/** What `signal` takes. */
export interface SignalArgs {
  /** e.g. `TERM`, `sigkill`, `HUP` (case-insensitive, `SIG` optional). */
  name: string;
}

/** What `stdout` and `stderr` reply once the stream is over. */
export interface OutputReply {
  /** Bytes dropped before this reader attached (nobody was reading then). */
  Dropped: number;
}
