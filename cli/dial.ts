/**
 * Where a client command dials: `-d` → `$CIRCUIT` (a URL, or a file holding one) →
 * `--discover` / `$CIRCUIT_DISCOVER` → error. The decision is a plain function.
 *
 * @module
 */

import { UsageError } from "./args.ts";

/** The contract's message when nothing says where to dial. */
export const NO_DIAL = "no dial or discovery addresses available; use -dial or -discover";

/** Where to go. */
export type DialTarget = { url: string } | { discover: string };

/** Inputs of {@linkcode chooseDial}. */
export interface DialInputs {
  /** `-d URL`. */
  dial?: string;
  /** `$CIRCUIT`: a URL, or the path of a file holding one. */
  circuitFile?: string;
  /** Reads that file. */
  readFile(path: string): string;
  /** `--discover`. */
  discover?: string;
  /** `$CIRCUIT_DISCOVER`. */
  discoverEnv?: string;
}

/**
 * Pick the dial target in the contract's order.
 *
 * @param i flags, environment and a file reader
 * @returns the target
 * @throws {UsageError} when nothing is given, or $CIRCUIT cannot be read
 */
export function chooseDial(i: DialInputs): DialTarget {
  if (i.dial) return { url: i.dial };
  if (i.circuitFile) {
    // `$CIRCUIT` may hold the URL itself instead of naming a file that holds one.
    if (i.circuitFile.startsWith("circuit://")) return { url: i.circuitFile.trim() };
    let text: string;
    try {
      text = i.readFile(i.circuitFile);
    } catch (err) {
      throw new UsageError(
        `Reading $CIRCUIT file "${i.circuitFile}" failed: ${(err as Error).message}`,
      );
    }
    const url = text.trim();
    if (!url) throw new UsageError(`Reading $CIRCUIT file "${i.circuitFile}" failed: it is empty`);
    return { url };
  }
  const d = i.discover || i.discoverEnv;
  if (d) return { discover: d };
  throw new UsageError(NO_DIAL);
}

/**
 * Parse a byte count: `1048576`, `512KiB`, `4MiB`, `1GiB` (also K, M, G, KB, MB, GB as
 * powers of 1024).
 *
 * @param text the size
 * @param flag the flag's name, for the error
 * @returns bytes
 * @throws {UsageError} when it is not a positive size
 */
export function parseBytes(text: string, flag: string): number {
  const m = /^(\d+)\s*(k|m|g)?(i?b)?$/i.exec(text.trim());
  const unit = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m?.[2] ?? "").toLowerCase()]!;
  const n = m ? Number(m[1]) * unit : NaN;
  if (!(n > 0)) {
    throw new UsageError(`Parsing --${flag} failed: expected a size like 4MiB, got "${text}"`);
  }
  return n;
}

/** Milliseconds per unit of a Go duration (`time.ParseDuration`); `us` and `µs`/`μs` alike. */
const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** One `NUMBER UNIT` term of a Go duration. */
const DURATION_TERM = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/**
 * Parse a duration as Go's `time.ParseDuration` reads it (`1m30s`, `1h2m3.5s`, `250ms`,
 * `1.5s`, `300us`/`300µs`, `10ns`), or plain seconds (`10`, `0.5`) as before. The result
 * is whole milliseconds, rounded up (`300us` and `10ns` are 1 ms, `1.0001s` is 1001 ms),
 * so a duration above zero never means "no wait".
 *
 * @param text the duration
 * @param flag the flag's name, for the error
 * @returns milliseconds, above zero
 * @throws {UsageError} when it is not a positive duration
 */
export function parseDuration(text: string, flag = "timeout"): number {
  const t = text.trim();
  let ms = /^\d+(?:\.\d+)?$/.test(t) ? Number(t) * 1000 : NaN;
  if (Number.isNaN(ms) && t !== "") {
    ms = 0;
    DURATION_TERM.lastIndex = 0;
    while (DURATION_TERM.lastIndex < t.length) {
      const m = DURATION_TERM.exec(t);
      if (!m) {
        ms = NaN;
        break;
      }
      ms += Number(m[1]) * DURATION_UNITS[m[2]];
    }
  }
  if (!(ms > 0) || !Number.isFinite(ms)) {
    throw new UsageError(
      `Parsing --${flag} failed: expected a duration like 10s or 1m30s, got "${text}"`,
    );
  }
  // Whole nanoseconds first, so 1.1s is 1100 ms and not 1101 after float error.
  return Math.ceil(Math.round(ms * 1e6) / 1e6);
}
