/**
 * Server logging through @logtape/logtape: one text line per record to stderr and to
 * `server.log` in the var directory.
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
import { LOG_FILE_MODE, THROTTLE_WINDOW_MS, THROTTLED_LINES_PER_WINDOW } from "./config.ts";

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

/**
 * Configure logging for a server process.
 *
 * @param logFile path of the server log, created (or narrowed) to mode 0600
 * @param level the lowest level written
 * @returns a function that closes the log file
 */
export function setupLogging(logFile: string, level: LogLevel = "info"): () => void {
  const enc = new TextEncoder();
  const file = Deno.openSync(logFile, { create: true, append: true, mode: LOG_FILE_MODE });
  // A log left by an older server may be wider than the mode above (which applies only
  // when the file is created).
  Deno.chmodSync(logFile, LOG_FILE_MODE);
  const write = (record: LogRecord) => {
    const bytes = enc.encode(formatLogLine(record));
    try {
      Deno.stderr.writeSync(bytes);
    } catch { /* stderr gone */ }
    try {
      file.writeSync(bytes);
    } catch { /* file closed */ }
  };
  configureSync({
    reset: true,
    sinks: { main: write },
    loggers: [
      { category: ["circuit"], lowestLevel: level, sinks: ["main"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["main"] },
    ],
  });
  return () => {
    try {
      file.close();
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
    const secs = Math.round(this.#o.windowMs / 100) / 10;
    this.#o.sink(
      shown
        ? `… and ${n} more ${this.#o.what} in the last ${secs} s`
        : `${n} ${this.#o.what} in the last ${secs} s`,
    );
  }
}
