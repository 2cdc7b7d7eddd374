/**
 * `circuit run`: one command on many servers, output prefixed by server, exit status the
 * highest of theirs.
 *
 * @module
 */

import { isServerName } from "../net/url.ts";
import { run, type RunLine, type RunResult, runStatus } from "../mod.ts";
import { type Parsed, UsageError } from "./args.ts";
import type { ClientBody } from "./command.ts";
import { print, readStdin, writeOut } from "./session.ts";

/** The usage line's arguments. */
export const RUN_ARGS = "[SERVER…|/] [flags] -- PATH [ARGS…]";

/** Exit status at least reported when the run was interrupted (Ctrl-C): 128 + SIGINT. */
const INTERRUPTED_STATUS = 130;

const enc = new TextEncoder();

/** Whether a word selects servers: `/` or `/X…` (names and tags will come here). */
function isSelectorWord(word: string): boolean {
  const parts = word.split("/").filter(Boolean);
  return word.startsWith("/") &&
    (parts.length === 0 || (parts.length === 1 && isServerName(parts[0])));
}

/**
 * Split `run`'s arguments into the selector and the command: around `--` when given,
 * else the leading selector words are the selector and the rest the command.
 *
 * @param args the positionals after `run`
 * @param rest the positionals after `--`, if it was given
 * @returns selector words and the command's words
 * @throws {UsageError} when there is no command
 */
export function splitRunArgs(
  args: string[],
  rest: string[] | undefined,
): { selector: string[]; command: string[] } {
  let selector: string[], command: string[];
  if (rest) {
    selector = args.slice(0, args.length - rest.length);
    command = rest;
  } else {
    let i = 0;
    while (i < args.length && isSelectorWord(args[i])) i++;
    selector = args.slice(0, i);
    command = args.slice(i);
  }
  if (command.length === 0) throw new UsageError(`usage: circuit run ${RUN_ARGS}`);
  return { selector, command };
}

/** Why a server failed, in one line. */
function failure(r: RunResult): string {
  if (r.error) return r.error.split("\n")[0];
  const why = r.signal ? `signal ${r.signal} (exit status ${r.status})` : `exit status ${r.status}`;
  return r.stopped ? `${why}; the run ${r.stopped}` : why;
}

function writeErr(text: string): void {
  const b = enc.encode(text);
  let off = 0;
  while (off < b.length) off += Deno.stderr.writeSync(b.subarray(off));
}

function printer(p: Parsed): ((line: RunLine) => void) | undefined {
  if (p.flags.json) return () => {};
  const prefix = !p.flags["no-prefix"];
  return (l) => {
    const text = `${prefix ? `${l.server}: ` : ""}${l.text}\n`;
    if (l.stream === "stdout") writeOut(enc.encode(text));
    else writeErr(text);
  };
}

/** `circuit run`. */
export const runCommand: ClientBody = async (args, p) => {
  const { selector, command } = splitRunArgs(args, p.rest);
  const parallel = p.flags.parallel === undefined ? undefined : Number(p.flags.parallel);
  if (parallel !== undefined && !(Number.isInteger(parallel) && parallel > 0)) {
    throw new UsageError(
      `Parsing --parallel failed: expected a count like 16, got "${p.flags.parallel}"`,
    );
  }
  const stdin = p.flags.stdin ? await readStdin() : undefined;
  return async ({ client, timeoutMs }) => {
    const job = run(client, selector, { Path: command[0], Args: command.slice(1) }, {
      stdin,
      timeoutMs,
      parallel,
      capture: p.flags.capture === true,
      onLine: printer(p),
    });
    let interrupted = false;
    const onInt = () => {
      interrupted = true;
      job.stop("interrupted");
    };
    Deno.addSignalListener("SIGINT", onInt);
    let results: RunResult[];
    try {
      results = await job.results;
    } finally {
      Deno.removeSignalListener("SIGINT", onInt);
    }
    if (p.flags.json) print(results.map((r) => JSON.stringify(r) + "\n").join(""));
    for (const r of results) {
      if (r.status !== 0) writeErr(`circuit run: ${r.server}: ${failure(r)}\n`);
    }
    const status = runStatus(results);
    return interrupted ? Math.max(status, INTERRUPTED_STATUS) : status;
  };
};
