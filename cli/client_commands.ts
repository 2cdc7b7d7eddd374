/**
 * Bodies of the client commands: arguments and input → call the client library → print.
 *
 * @module
 */

import {
  comparePaths,
  exitStatus,
  isStdinClosed,
  type LsEntry,
  parseGlob,
  printable,
  type ProcCommand,
} from "../mod.ts";
import type { ClientBody } from "./command.ts";
import { print, readJsonInput, readStdin, type Session, writeOut } from "./session.ts";

const enc = new TextEncoder();

/** Lines of an `ls` listing printed per write. */
const LS_PRINT_LINES = 4096;

/** Element state as JSON: tab-indented as the original printed it, one line with --json. */
function json(v: unknown, compact = false): string {
  return JSON.stringify(v ?? null, null, compact ? undefined : "\t") + "\n";
}

/** Children before parents: component-wise order, a prefix after what extends it. */
function compareDepthFirst(a: string, b: string): number {
  const x = a.split("/"), y = b.split("/");
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return y.length - x.length;
}

/** The client commands of the core, by name. */
export const CLIENT_COMMANDS: Record<string, ClientBody> = {
  ls: ([pattern], p) => {
    const glob = parseGlob(pattern);
    return async ({ client, timeoutMs }) => {
      const anchor = client.walk("/" + glob.path.join("/"));
      const entries = await anchor.ls({ recursive: glob.recursive, timeoutMs });
      entries.sort((a, b) =>
        p.flags.depth ? compareDepthFirst(a.path, b.path) : comparePaths(a.path, b.path)
      );
      // Names are checked by servers, but escaped here too: nothing a server sends reaches
      // the terminal raw. Printed in pieces, so a large listing is never one huge string.
      const line = (e: LsEntry) =>
        p.flags.json
          ? JSON.stringify({ path: e.path, kind: e.kind, ...(e.error ? { error: e.error } : {}) }) +
            "\n"
          : p.flags.long
          ? `${printable(e.kind).padEnd(15)} ${printable(e.path)}\n`
          : `${printable(e.path)}\n`;
      for (let i = 0; i < entries.length; i += LS_PRINT_LINES) {
        print(entries.slice(i, i + LS_PRINT_LINES).map(line).join(""));
      }
      const failed = entries.filter((e) => e.error);
      if (failed.length === 0) return 0;
      const names = failed.map((e) => printable(e.path)).join(", ");
      throw new Error(`Listing failed for ${names}: ${printable(failed[0].error ?? "")}`);
    };
  },
  peek: ([path], p) => async ({ client, timeoutMs }) => {
    print(json(await client.walk(path).peek({ timeoutMs }), p.flags.json === true));
  },
  scrub: ([path]) => async ({ client, timeoutMs }) => {
    await client.walk(path).scrub({ timeoutMs });
  },
  stk: ([path], p) => async ({ client, timeoutMs }) => {
    print(json(await client.walk(path).stk({ timeoutMs }), p.flags.json === true));
  },
  join: ([path, url]) => async ({ client, timeoutMs }) => {
    await client.walk(path).join(url, { timeoutMs: timeoutMs ?? 15_000 });
  },
  suicide: ([path]) => async ({ client, timeoutMs }) => {
    await client.walk(path).suicide({ timeoutMs });
  },
};

/** Copy one of a process's output streams to our stdout. */
function copyStream(path: string, which: "stdout" | "stderr") {
  return async ({ client, timeoutMs }: Session): Promise<void> => {
    const { readable, dropped } = client.walk(path).proc().output(which, { timeoutMs });
    for await (const chunk of readable) writeOut(chunk);
    const n = await dropped;
    if (n > 0) {
      Deno.stderr.writeSync(
        enc.encode(
          `circuit: ${n} bytes of ${which} were dropped before this read (nobody was reading)\n`,
        ),
      );
    }
  };
}

/** The process commands, by name. */
export const PROC_COMMANDS: Record<string, ClientBody> = {
  mkproc: async ([path], p) => {
    const cmd = await readJsonInput() as ProcCommand;
    if (p.flags.scrub && cmd && typeof cmd === "object") cmd.Scrub = true;
    return async ({ client, timeoutMs }) => {
      await client.walk(path).makeProc(cmd, { timeoutMs });
    };
  },
  signal: ([sig, path]) => async ({ client, timeoutMs }) => {
    await client.walk(path).proc().signal(sig, { timeoutMs });
  },
  wait: ([path], p) => async ({ client, timeoutMs }) => {
    const state = await client.walk(path).proc().wait({ timeoutMs: timeoutMs ?? 0 });
    print(json(state, p.flags.json === true));
    return p.flags.exit ? exitStatus(state) : 0;
  },
  waitall: async (_, p) => {
    const paths = new TextDecoder().decode(await readStdin()).split("\n").map((l) => l.trim())
      .filter(Boolean);
    return async ({ client, timeoutMs }) => {
      const states = await Promise.all(
        paths.map((path) => client.walk(path).proc().wait({ timeoutMs: timeoutMs ?? 0 })),
      );
      return p.flags.exit ? Math.max(0, ...states.map(exitStatus)) : 0;
    };
  },
  stdin: ([path]) => async ({ client, timeoutMs }) => {
    // Errors are the server's (busy, not found, …), not a reset stream's. A process that
    // stops reading ends the copy, as `yes | head` ends: not an error.
    await Deno.stdin.readable.pipeTo(client.walk(path).proc().openStdin({ timeoutMs }))
      .catch((err) => {
        if (!isStdinClosed(err)) throw err;
      });
  },
  stdout: ([path]) => copyStream(path, "stdout"),
  stderr: ([path]) => copyStream(path, "stderr"),
};
