/**
 * Command-line parsing: long flags with one or two dashes (`-dial X`, `--dial X`,
 * `--dial=X`), short aliases, flags before or after positionals, negative numbers as
 * positionals. Built on `node:util` parseArgs after normalising single-dash long flags.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { suggest } from "./suggest.ts";

/** One flag's definition. */
export interface FlagSpec {
  /** `string` takes a value; `boolean` does not. */
  type: "string" | "boolean";
  /** One-letter alias. */
  short?: string;
  /** Help text. */
  help: string;
  /** Value placeholder in help, e.g. `URL`. */
  value?: string;
}

/** Parsed arguments. */
export interface Parsed {
  /** Flag values by long name. */
  flags: Record<string, string | boolean | undefined>;
  /** Positionals, in order. */
  positionals: string[];
  /**
   * Every value of each string flag given more than once, in order (`flags` holds the
   * last); `start -j A -j B` joins through both.
   */
  repeated?: Record<string, string[]>;
  /** The positionals after `--`, when it was given (they are in `positionals` too). */
  rest?: string[];
}

/** A command-line mistake: printed as one line, exit 1. */
export class UsageError extends Error {
  /** @param message what is wrong */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

const NEG = "\u0000";

/**
 * Rewrite `-long` as `--long` and protect negative numbers.
 *
 * @param argv raw arguments
 * @returns arguments parseArgs understands
 */
export function normalizeArgs(argv: string[]): string[] {
  const out: string[] = [];
  let rest = false;
  for (const a of argv) {
    if (rest || a === "-" || !a.startsWith("-")) out.push(a);
    else if (a === "--") {
      rest = true;
      out.push(a);
    } else if (/^-\d/.test(a)) out.push(NEG + a);
    else if (!a.startsWith("--") && a.length > 2 && a[2] !== "=") out.push("-" + a);
    else out.push(a);
  }
  return out;
}

/**
 * Parse arguments against a set of flags.
 *
 * @param argv raw arguments
 * @param specs allowed flags by long name
 * @returns flags and positionals
 * @throws {UsageError} for an unknown flag or a missing value
 */
export function parse(argv: string[], specs: Record<string, FlagSpec>): Parsed {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const [name, s] of Object.entries(specs)) {
    options[name] = s.short ? { type: s.type, short: s.short } : { type: s.type };
  }
  const { args, off } = rewriteEquals(argv, specs);
  try {
    const { values, positionals, tokens } = parseArgs({
      args: normalizeArgs(args),
      options,
      allowPositionals: true,
      strict: true,
      tokens: true,
    });
    for (const name of off) values[name] ??= false;
    const all: Record<string, string[]> = {};
    for (const t of tokens ?? []) {
      if (t.kind === "option" && typeof t.value === "string") (all[t.name] ??= []).push(t.value);
    }
    const repeated = Object.fromEntries(Object.entries(all).filter(([, v]) => v.length > 1));
    const plain = (p: string) => (p.startsWith(NEG) ? p.slice(1) : p);
    const end = tokens?.findIndex((t) => t.kind === "option-terminator") ?? -1;
    const rest = end < 0
      ? undefined
      : tokens!.slice(end + 1).flatMap((t) => t.kind === "positional" ? [plain(t.value)] : []);
    return {
      flags: values as Parsed["flags"],
      positionals: positionals.map(plain),
      ...(Object.keys(repeated).length ? { repeated } : {}),
      ...(rest ? { rest } : {}),
    };
  } catch (err) {
    const msg = (err as Error).message
      .replace(/^Unknown option '(-+)([^']*)'.*$/s, (_, _dashes, name: string) => {
        const near = name.length > 1 ? suggest(name, Object.keys(specs)) : undefined;
        return `flag provided but not defined: -${name}${near ? ` (did you mean --${near}?)` : ""}`;
      })
      .replace(/^Option '([^']*)' argument missing.*$/s, "flag needs an argument: $1")
      .split("\n")[0];
    throw new UsageError(msg);
  }
}

/** The spellings of true and false Go's flag package accepts (strconv.ParseBool). */
const BOOLS: Record<string, boolean> = {
  "1": true,
  t: true,
  T: true,
  TRUE: true,
  true: true,
  True: true,
  "0": false,
  f: false,
  F: false,
  FALSE: false,
  false: false,
  False: false,
};

/**
 * Rewrite `FLAG=VALUE` forms as Go's flag package reads them: a short alias with `=`
 * (`-d=URL`) becomes the long flag, and an on/off flag given a value (`-l=true`,
 * `--scrub=false`) becomes the bare flag, or is dropped and reported as off.
 */
function rewriteEquals(
  argv: string[],
  specs: Record<string, FlagSpec>,
): { args: string[]; off: string[] } {
  const byShort = new Map<string, string>();
  for (const [name, s] of Object.entries(specs)) if (s.short) byShort.set(s.short, name);
  const args: string[] = [];
  const off: string[] = [];
  let rest = false;
  // Whether this argument is a flag that takes the next argument as its value.
  const takesValue = (tok: string): boolean => {
    const t = /^(--?)([^=-][^=]*)$/.exec(tok);
    const name = t && (t[1] === "-" && t[2].length === 1 ? byShort.get(t[2]) : t[2]);
    return !!name && specs[name]?.type === "string";
  };
  for (const a of argv) {
    const m = rest ? null : /^(--?)([^=-][^=]*)=(.*)$/s.exec(a);
    if (a === "--") rest = true;
    const name = m && (m[1] === "-" && m[2].length === 1 ? byShort.get(m[2]) : m[2]);
    const spec = name ? specs[name] : undefined;
    if (!m || !name || !spec) {
      args.push(a);
      continue;
    }
    if (spec.type === "string") {
      args.push(`--${name}=${m[3]}`);
      continue;
    }
    const on = BOOLS[m[3]];
    if (on === undefined) {
      throw new UsageError(`invalid boolean value "${m[3]}" for -${m[2]}: parse error`);
    }
    if (on) args.push(`--${name}`);
    else {
      // The last occurrence wins, as in Go: an earlier bare flag is undone.
      const bare = new Set([`--${name}`, `-${name}`, ...(spec.short ? [`-${spec.short}`] : [])]);
      for (let i = args.length - 1; i >= 0; i--) {
        // Not when it is the value of a flag before it (`-d -l`): that is no flag at all.
        if (bare.has(args[i]) && !(i > 0 && takesValue(args[i - 1]))) args.splice(i, 1);
      }
      off.push(name);
    }
  }
  return { args, off };
}
