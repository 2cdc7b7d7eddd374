/**
 * Server logging through @logtape/logtape: one line per record (text, or a JSON object) to
 * stderr, and to a log file when one is given (`server.log` in the var directory unless
 * `start --log-file` says otherwise; see `cli/start.ts`).
 *
 * Every line is escaped here, centrally, so that no caller can forget: a message that
 * carries text from a peer (a hello field, an element name) can never start a new line,
 * move the cursor or hide itself from a terminal. Events that anyone on the network can
 * cause (refused connections, failed handshakes) go through a {@linkcode LogThrottle},
 * so they cannot flood the var directory either.
 *
 * @module
 */

import { configureSync, defaultTextFormatter, getLogger, type Logger } from "@logtape/logtape";
import type { LogLevel, LogRecord } from "@logtape/logtape";
import {
  JOURNAL_STREAM_ENV,
  LOG_FILE_MODE,
  THROTTLE_WINDOW_MS,
  THROTTLED_LINES_PER_WINDOW,
} from "./config.ts";

/**
 * Characters written escaped: C0 controls (NUL, ESC, CR, LF, TAB, …), DEL, C1 controls,
 * the Unicode line and paragraph separators, the bidirectional overrides and isolates
 * (which reorder what a terminal shows), and lone surrogates. With the `u` flag a
 * surrogate range matches only a lone surrogate (a pair is one code point, outside it).
 * A backslash is left as it is, so text a caller already escaped (`net/escape.ts`) is
 * not escaped twice.
 */
const NEEDS_ESCAPE =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]/gu;

const SHORT_ESCAPES: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * Escape a text for one log line: control characters become `\n`, `\r`, `\t`, `\xHH` or
 * `\uHHHH`, and the result never contains a line break.
 *
 * @param text any text, including text a peer sent
 * @returns the text, safe to write as (part of) one line
 */
export function escapeLogText(text: string): string {
  return text.replace(NEEDS_ESCAPE, (c) => {
    const short = SHORT_ESCAPES[c];
    if (short) return short;
    const code = c.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/**
 * Format a record as exactly one escaped line, ending with a newline.
 *
 * @param record the record
 * @returns the line
 */
export function formatLogLine(record: LogRecord): string {
  const text = defaultTextFormatter(record);
  return escapeLogText(text.endsWith("\n") ? text.slice(0, -1) : text) + "\n";
}

/** Levels of `start --log-level`, lowest first. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
/** A level of `start --log-level`. */
export type ServerLogLevel = typeof LOG_LEVELS[number];
/** Formats of `start --log-format`: `text` lines, or one JSON object per line. */
export const LOG_FORMATS = ["text", "json"] as const;
/** A format of `start --log-format`. */
export type ServerLogFormat = typeof LOG_FORMATS[number];

const TO_LOGTAPE: Record<ServerLogLevel, LogLevel> = {
  debug: "debug",
  info: "info",
  warn: "warning",
  error: "error",
};

const FROM_LOGTAPE: Record<LogLevel, string> = {
  trace: "debug",
  debug: "debug",
  info: "info",
  warning: "warn",
  error: "error",
  fatal: "error",
};

/**
 * Format a record as one JSON object on one line: `{"time", "level", "category",
 * "message"}` (level `debug`, `info`, `warn` or `error`; category like `circuit.net`).
 * The message is escaped as a text line is, then JSON-encoded.
 *
 * @param record the record
 * @returns the line, ending with a newline
 */
export function formatJsonLogLine(record: LogRecord): string {
  const message = record.message
    .map((part) => typeof part === "string" ? part : JSON.stringify(part) ?? String(part))
    .join("");
  return JSON.stringify({
    time: new Date(record.timestamp).toISOString(),
    level: FROM_LOGTAPE[record.level],
    category: record.category.join("."),
    message: escapeLogText(message),
  }) + "\n";
}

/**
 * Whether stderr goes to the systemd journal: `JOURNAL_STREAM` is set (systemd sets it for
 * a unit whose stderr is the journal) and names the device and inode stderr is on.
 *
 * @returns true under journald
 */
export function stderrIsJournal(): boolean {
  try {
    const q = Deno.permissions.querySync({ name: "env", variable: JOURNAL_STREAM_ENV });
    if (q.state !== "granted") return false;
    const v = Deno.env.get(JOURNAL_STREAM_ENV);
    if (!v) return false;
    const [dev, ino] = v.split(":").map(Number);
    // What fd 2 is, through /proc (Linux): a socket to journald has the inode named above.
    const st = Deno.statSync("/proc/self/fd/2");
    return st.dev === dev && st.ino === ino;
  } catch {
    return false;
  }
}

/** Options of {@linkcode setupLogging}. */
export interface LoggingOptions {
  /** Also write every line to this file (created, or narrowed, to mode 0600); null: none. */
  file: string | null;
  /** The lowest level written. @default {"info"} */
  level?: ServerLogLevel;
  /** Text lines, or one JSON object per line. @default {"text"} */
  format?: ServerLogFormat;
}

/** Lines a log destination did not take (stderr gone, file not writable), for metrics. */
let unwritten = 0;

/**
 * Log lines lost so far: left out by a {@linkcode LogThrottle} (their summary line is
 * written) or not taken by stderr or the log file.
 *
 * @returns the count since the process started
 */
export function droppedLogLines(): number {
  return unwritten + throttled;
}

/**
 * Configure logging for a server process: every line to stderr, and to `file` when given.
 *
 * @param options file, level, format
 * @returns a function that closes the log file
 */
export function setupLogging(options: LoggingOptions): () => void {
  const enc = new TextEncoder();
  const path = options.file;
  const file = path === null
    ? null
    : Deno.openSync(path, { create: true, append: true, mode: LOG_FILE_MODE });
  // A log left by an older server may be wider than the mode above (which applies only
  // when the file is created).
  if (path !== null) Deno.chmodSync(path, LOG_FILE_MODE);
  const format = options.format === "json" ? formatJsonLogLine : formatLogLine;
  const write = (record: LogRecord) => {
    const bytes = enc.encode(format(record));
    try {
      Deno.stderr.writeSync(bytes);
    } catch {
      unwritten++;
    }
    try {
      file?.writeSync(bytes);
    } catch {
      unwritten++;
    }
  };
  configureSync({
    reset: true,
    sinks: { main: write },
    loggers: [
      { category: ["circuit"], lowestLevel: TO_LOGTAPE[options.level ?? "info"], sinks: ["main"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["main"] },
    ],
  });
  return () => {
    try {
      file?.close();
    } catch { /* closed */ }
  };
}

/**
 * A logger for one server layer.
 *
 * @param layer `server`, `mesh`, `net`, …
 * @returns the logger
 */
export function logger(layer: string): Logger {
  return getLogger(["circuit", layer]);
}

/** Lines left out by every {@linkcode LogThrottle} so far (counted when summarized). */
let throttled = 0;

/** Options of {@linkcode LogThrottle}. */
export interface LogThrottleOptions {
  /** Where lines go (for example a logger's `warn`). */
  sink: (message: string) => void;
  /** The events in plural, for the summary: `refused connections`. */
  what: string;
  /** Lines written per window; the rest are counted. @default {THROTTLED_LINES_PER_WINDOW} */
  linesPerWindow?: number;
  /** The window, in ms. @default {THROTTLE_WINDOW_MS} */
  windowMs?: number;
}

/**
 * Rate-limits one kind of log line: within each window the first `linesPerWindow` lines
 * are written and the rest only counted; when the window ends, one summary line says how
 * many were left out (`… and 1234 more refused connections in the last 10 s`). With
 * `linesPerWindow` 0 every event is counted and only summaries are written.
 */
export class LogThrottle {
  #o: Required<LogThrottleOptions>;
  #shown = 0;
  #counted = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /**
   * Make a throttle.
   *
   * @param options sink, what, limits
   */
  constructor(options: LogThrottleOptions) {
    this.#o = {
      linesPerWindow: THROTTLED_LINES_PER_WINDOW,
      windowMs: THROTTLE_WINDOW_MS,
      ...options,
    };
  }

  /**
   * Write `message` if this window still has room, else count it.
   *
   * @param message the line
   */
  log(message: string): void {
    if (this.#closed) return;
    this.#startWindow();
    if (this.#shown < this.#o.linesPerWindow) {
      this.#shown++;
      this.#o.sink(message);
    } else {
      this.#counted++;
    }
  }

  /**
   * Count `n` events without writing a line for them.
   *
   * @param n how many
   */
  count(n = 1): void {
    if (this.#closed) return;
    this.#startWindow();
    this.#counted += n;
  }

  /** Events counted but not written in the current window. */
  get pending(): number {
    return this.#counted;
  }

  /** Write the summary of the current window now (if any) and stop. */
  close(): void {
    if (this.#closed) return;
    this.#endWindow();
    this.#closed = true;
  }

  #startWindow(): void {
    if (this.#timer !== undefined) return;
    const timer = setTimeout(() => this.#endWindow(), this.#o.windowMs);
    // A pending summary must not keep the process alive.
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  #endWindow(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const n = this.#counted, shown = this.#shown;
    this.#counted = 0;
    this.#shown = 0;
    if (n === 0) return;
    throttled += n;
    const secs = Math.round(this.#o.windowMs / 100) / 10;
    this.#o.sink(
      shown
        ? `… and ${n} more ${this.#o.what} in the last ${secs} s`
        : `${n} ${this.#o.what} in the last ${secs} s`,
    );
  }
}
