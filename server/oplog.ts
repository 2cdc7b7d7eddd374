/**
 * The operation log: every state-changing operation, in execution order, as JSON lines
 * `{"time", "caller", "op", "path", "outcome"}`. Written synchronously so a crash loses
 * nothing that was acknowledged while the disk takes writes.
 *
 * A line is written after its operation, and an operation's outcome never depends on its
 * line: when the file cannot be written (a full disk), the operation still stands as it
 * happened and its line waits in memory, up to {@linkcode OPLOG_BACKLOG_LINES} lines, to
 * be written in order as soon as the file takes writes again (tried before every new
 * line, and every {@linkcode OPLOG_RETRY_MS}). Lines past the backlog are counted, and a
 * line with op `oplog` says how many were lost, where they were lost.
 *
 * The file is rotated by size: before a line would take it past
 * `OPLOG_MAX_BYTES` in `config.ts` (64 MiB), it is renamed `ops.log.1` (replacing the one
 * before) and a new file begun, so the two hold the latest 64 to 128 MiB of operations.
 *
 * @module
 */

import { OPLOG_BACKLOG_LINES, OPLOG_RETRY_MS, oplogMaxBytes, VAR_FILE_MODE } from "./config.ts";

// Kept for `server/oplog_test.ts`, which imports it from here; it lives in `config.ts`.
export { OPLOG_BACKLOG_LINES };

/** One operation log line. */
export interface OpRecord {
  /** RFC 3339 time the operation finished. */
  time: string;
  /** Who asked: `client HOST:PORT`, or the first server's note of it. */
  caller: string;
  /** Operation: `make proc`, `scrub`, `join`, … */
  op: string;
  /** Absolute path. */
  path: string;
  /** `ok`, or `error: <message>`. */
  outcome: string;
}

/** The operation log's health, for `stk`. */
export interface OpLogStats {
  /** Lines waiting in memory for the file to take writes. */
  Pending: number;
  /** Lines dropped since the server started because the backlog was full. */
  Lost: number;
  /** Why the file cannot be written now, or null when it can. */
  Error: string | null;
}

/** Options of {@linkcode OpLog}. */
export interface OpLogOptions {
  /**
   * Told once when the file stops taking writes and once when it takes them again (not
   * once per line).
   */
  report?: (message: string) => void;
  /** Rotate before the file would pass this size. @default {oplogMaxBytes()} */
  maxBytes?: number;
}

/** Appends operation records to a file; never throws once open. */
export class OpLog {
  #path: string;
  /** The open file, or null while a rotation could not open the new one. */
  #file: Deno.FsFile | null;
  /** Bytes in the current file. */
  #size: number;
  #maxBytes: number;
  #enc = new TextEncoder();
  /** Encoded lines not yet written, oldest first; the first may be partly written. */
  #pending: Uint8Array[] = [];
  /** Bytes of `#pending[0]` already written. */
  #written = 0;
  /** Lines dropped since the backlog last drained (not yet noted in the file). */
  #dropped = 0;
  #lost = 0;
  #error: string | null = null;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #report: (message: string) => void;
  #closed = false;

  /**
   * Open the operation log.
   *
   * @param path the file, created (mode {@linkcode VAR_FILE_MODE}) or appended to
   * @param options where trouble is reported
   */
  constructor(path: string, options: OpLogOptions = {}) {
    this.#path = path;
    this.#file = OpLog.#open(path);
    this.#size = this.#file.statSync().size;
    // A file left by an older server may be readable by others: the log is the owner's.
    Deno.chmodSync(path, VAR_FILE_MODE);
    this.#report = options.report ?? (() => {});
    this.#maxBytes = options.maxBytes ?? oplogMaxBytes();
  }

  static #open(path: string): Deno.FsFile {
    return Deno.openSync(path, { create: true, append: true, mode: VAR_FILE_MODE });
  }

  /**
   * Where trouble is reported from now on (see {@linkcode OpLogOptions.report}).
   *
   * @param fn the reporter
   */
  set report(fn: (message: string) => void) {
    this.#report = fn;
  }

  /**
   * The log's health, for `stk`.
   *
   * @returns lines waiting, lines lost, and the current error
   */
  stats(): OpLogStats {
    return { Pending: this.#pending.length, Lost: this.#lost, Error: this.#error };
  }

  /**
   * Append one record, after any held back. Never throws: a line the file does not take
   * now waits in memory (see the module's documentation).
   *
   * @param r the record without its time
   */
  write(r: Omit<OpRecord, "time">): void {
    if (this.#closed) return;
    this.#flush();
    const line = this.#encode(r);
    if (this.#pending.length >= OPLOG_BACKLOG_LINES) {
      this.#dropped++;
      this.#lost++;
      return;
    }
    this.#pending.push(line);
    this.#flush();
  }

  /** Write what is held back (as far as the file takes it), then close the file. */
  close(): void {
    if (this.#closed) return;
    this.#flush();
    this.#closed = true;
    clearTimeout(this.#retry);
    try {
      this.#file?.close();
    } catch { /* closed */ }
  }

  /**
   * Make room for `bytes` more: rotate when they would take a non-empty file past the
   * bound, and reopen after a rotation that could not.
   *
   * @throws {Deno.errors.NotFound} and the like, when the file system refuses (the caller
   *   holds the line back)
   */
  #room(bytes: number): Deno.FsFile {
    if (this.#file !== null && this.#size > 0 && this.#size + bytes > this.#maxBytes) {
      const old = this.#file;
      this.#file = null;
      try {
        old.close();
      } catch { /* closed */ }
      Deno.renameSync(this.#path, `${this.#path}.1`);
      this.#size = 0;
    }
    if (this.#file === null) {
      this.#file = OpLog.#open(this.#path);
      this.#size = this.#file.statSync().size;
    }
    return this.#file;
  }

  #encode(r: Omit<OpRecord, "time">): Uint8Array {
    return this.#enc.encode(JSON.stringify({ time: new Date().toISOString(), ...r }) + "\n");
  }

  /** Write held lines in order; a line that does not go leaves the rest waiting. */
  #flush(): void {
    try {
      while (this.#pending.length > 0) {
        const line = this.#pending[0];
        const file = this.#written === 0 ? this.#room(line.length) : this.#file!;
        while (this.#written < line.length) {
          const n = file.writeSync(line.subarray(this.#written));
          this.#written += n;
          this.#size += n;
        }
        this.#pending.shift();
        this.#written = 0;
        if (this.#pending.length === 0 && this.#dropped > 0) {
          // Where lines were lost, the file says how many.
          this.#pending.push(this.#encode({
            caller: "server",
            op: "oplog",
            path: "/",
            outcome: `error: ${this.#dropped} lines lost: ops.log could not be written`,
          }));
          this.#dropped = 0;
        }
      }
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      if (this.#error === null) {
        this.#report(`ops.log cannot be written (${why}); holding its lines in memory`);
      }
      this.#error = why;
      if (this.#retry === undefined) {
        this.#retry = setTimeout(() => {
          this.#retry = undefined;
          if (!this.#closed) this.#flush();
        }, OPLOG_RETRY_MS);
        // Held lines never keep the process alive.
        Deno.unrefTimer(this.#retry);
      }
      return;
    }
    if (this.#error !== null) {
      this.#error = null;
      const lost = this.#lost === 0 ? "none" : String(this.#lost);
      this.#report(`ops.log is written again; lines lost since the server started: ${lost}`);
    }
  }
}
