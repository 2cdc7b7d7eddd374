/**
 * Making text a peer sent safe to put into a log line or an error message: no control
 * character, line break or lone surrogate gets through raw, so a value cannot forge a log
 * line or drive a terminal, and its length is bounded.
 *
 * @module
 */

/** Characters JSON.stringify leaves raw but a terminal or a log reader would act on. */
const UNSAFE = /[\u007f-\u009f\u2028\u2029]/g;

/** Options of {@linkcode escapeForLog}. */
export interface EscapeOptions {
  /** Longest text kept, in UTF-16 code units, before `…` marks the cut. @default {200} */
  maxChars?: number;
  /** Wrap the text in double quotes (a value); false to embed it in a sentence. @default {true} */
  quote?: boolean;
}

/**
 * A peer-supplied value as one safe line: `JSON.stringify`-escaped (`\n`, `\u001b`, lone
 * surrogates as `\udXXX`), with DEL, C1 controls and U+2028/2029 escaped too, and cut to
 * `maxChars`.
 *
 * @example A newline cannot start a new log line
 * ```ts
 * import { escapeForLog } from "./escape.ts";
 * console.log(escapeForLog("x\nmember X1 left")); // "x\nmember X1 left" (one line, quoted)
 * ```
 *
 * @param value anything (non-strings are converted with `String`)
 * @param options length bound and quoting
 * @returns printable text without a line break
 */
export function escapeForLog(value: unknown, options: EscapeOptions = {}): string {
  const max = options.maxChars ?? 200;
  let s = typeof value === "string" ? value : String(value);
  const cut = s.length > max;
  if (cut) s = s.slice(0, max);
  let out = JSON.stringify(s).replace(
    UNSAFE,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  if (cut) out = `${out.slice(0, -1)}…"`;
  return options.quote === false ? out.slice(1, -1) : out;
}
