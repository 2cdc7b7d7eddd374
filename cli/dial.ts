/**
 * Where a client command dials: `-d` → the URL in the file named by `$CIRCUIT` →
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
  /** `$CIRCUIT`: path of a file holding a URL. */
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

/**
 * Parse a duration: `250ms`, `10s`, `2m`, `1h`, or plain seconds.
 *
 * @param text the duration
 * @returns milliseconds
 * @throws {UsageError} when it is not a positive duration
 */
export function parseDuration(text: string, flag = "timeout"): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m?.[2] ?? "s"]!;
  const ms = m ? Number(m[1]) * unit : NaN;
  if (!(ms > 0)) {
    throw new UsageError(`Parsing --${flag} failed: expected a duration like 10s, got "${text}"`);
  }
  return ms;
}
