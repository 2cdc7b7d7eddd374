/**
 * Bodies of the client commands: parse → call the client library → print.
 *
 * @module
 */

import {
  type Anchor,
  comparePaths,
  isStdinClosed,
  type LsEntry,
  parseGlob,
  type ProcCommand,
} from "../mod.ts";
import { printable } from "../net/names.ts";
import { type Parsed, UsageError } from "./args.ts";
import { positionals, print, type Session, withSession, writeOut } from "./session.ts";
import type { Runner } from "./commands.ts";

const enc = new TextEncoder();

/** Lines of an `ls` listing printed per write. */
const LS_PRINT_LINES = 4096;

function json(v: unknown): string {
  return JSON.stringify(v ?? null, null, "\t") + "\n";
}

/** Children before parents: component-wise order, a prefix after what extends it. */
function compareDepthFirst(a: string, b: string): number {
  const x = a.split("/"), y = b.split("/");
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return y.length - x.length;
}

function anchorOf(s: Session, path: string): Anchor {
  return s.client.walk(path);
}

/** The client commands of the core, by name. */
export const CLIENT_COMMANDS: Record<string, Runner> = {
  ls: (p) =>
    withSession(p, async (s) => {
      const [pattern] = positionals(p, 1, 1, "[-l] [--depth] GLOB");
      const glob = parseGlob(pattern);
      const anchor = s.client.walk("/" + glob.path.join("/"));
      const entries = await anchor.ls({ recursive: glob.recursive, timeoutMs: s.timeoutMs });
      entries.sort((a, b) =>
        p.flags.depth ? compareDepthFirst(a.path, b.path) : comparePaths(a.path, b.path)
      );
      // Names are checked by servers, but escaped here too: nothing a server sends reaches
      // the terminal raw. Printed in pieces, so a large listing is never one huge string.
      const line = (e: LsEntry) =>
        p.flags.long
          ? `${printable(e.kind).padEnd(15)} ${printable(e.path)}\n`
          : `${printable(e.path)}\n`;
      for (let i = 0; i < entries.length; i += LS_PRINT_LINES) {
        print(entries.slice(i, i + LS_PRINT_LINES).map(line).join(""));
      }
      const failed = entries.filter((e) => e.error);
      if (failed.length === 0) return 0;
      const names = failed.map((e) => printable(e.path)).join(", ");
      throw new Error(`Listing failed for ${names}: ${printable(failed[0].error ?? "")}`);
    }),
  peek: (p) =>
    withSession(p, async (s) => {
      const [path] = positionals(p, 1, 1, "ANCHOR");
      print(json(await anchorOf(s, path).peek({ timeoutMs: s.timeoutMs })));
      return 0;
    }),
  scrub: (p) =>
    withSession(p, async (s) => {
      const [path] = positionals(p, 1, 1, "ANCHOR");
      await anchorOf(s, path).scrub({ timeoutMs: s.timeoutMs });
      return 0;
    }),
  stk: (p) =>
    withSession(p, async (s) => {
      const [path] = positionals(p, 1, 1, "SERVER");
      print(json(await anchorOf(s, path).stk({ timeoutMs: s.timeoutMs })));
      return 0;
    }),
  join: (p) =>
    withSession(p, async (s) => {
      const [path, url] = positionals(p, 2, 2, "SERVER URL");
      await anchorOf(s, path).join(url, { timeoutMs: s.timeoutMs ?? 15_000 });
      return 0;
    }),
  suicide: (p) =>
    withSession(p, async (s) => {
      const [path] = positionals(p, 1, 1, "SERVER");
      await anchorOf(s, path).suicide({ timeoutMs: s.timeoutMs });
      return 0;
    }),
};

async function readStdin(): Promise<Uint8Array> {
  return new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
}

async function copyStream(p: Parsed, which: "stdout" | "stderr"): Promise<number> {
  return await withSession(p, async (s) => {
    const [path] = positionals(p, 1, 1, "PROC");
    const { readable, dropped } = anchorOf(s, path).proc().output(which, {
      timeoutMs: s.timeoutMs,
    });
    for await (const chunk of readable) writeOut(chunk);
    const n = await dropped;
    if (n > 0) {
      Deno.stderr.writeSync(
        enc.encode(
          `circuit: ${n} bytes of ${which} were dropped before this read (nobody was reading)\n`,
        ),
      );
    }
    return 0;
  });
}

/** The process commands, by name. */
export const PROC_COMMANDS: Record<string, Runner> = {
  mkproc: (p) =>
    withSession(p, async (s) => {
      const [path] = positionals(p, 1, 1, "[--scrub] ANCHOR < JSON");
      const text = new TextDecoder().decode(await readStdin());
      let cmd: ProcCommand;
      try {
        cmd = JSON.parse(text);
      } catch (err) {
        const why = (err as Error).message.replace(/\s+/g, " ");
        throw new UsageError(`command json not parsing: ${why}`);
      }
      if (p.flags.scrub && cmd && typeof cmd === "object") cmd.Scrub = true;
      await anchorOf(s, path).makeProc(cmd, { timeoutMs: s.timeoutMs });
      return 0;
    }),
  signal: (p) =>
    withSession(p, async (s) => {
      const [sig, path] = positionals(p, 2, 2, "SIGNAL PROC");
      await anchorOf(s, path).proc().signal(sig, { timeoutMs: s.timeoutMs });
      return 0;
    }),
  wait: (p) =>
    withSession(p, async (s) => {
      const [path] = positionals(p, 1, 1, "PROC");
      print(json(await anchorOf(s, path).proc().wait({ timeoutMs: s.timeoutMs ?? 0 })));
      return 0;
    }),
  waitall: (p) =>
    withSession(p, async (s) => {
      positionals(p, 0, 0, "< anchors, one a line");
      const paths = new TextDecoder().decode(await readStdin()).split("\n").map((l) => l.trim())
        .filter(Boolean);
      await Promise.all(
        paths.map((path) => anchorOf(s, path).proc().wait({ timeoutMs: s.timeoutMs ?? 0 })),
      );
      return 0;
    }),
  stdin: (p) =>
    withSession(p, async (s) => {
      const [path] = positionals(p, 1, 1, "PROC");
      // Errors are the server's (busy, not found, …), not a reset stream's. A process that
      // stops reading ends the copy, as `yes | head` ends: not an error.
      await Deno.stdin.readable.pipeTo(
        anchorOf(s, path).proc().openStdin({ timeoutMs: s.timeoutMs }),
      ).catch((err) => {
        if (!isStdinClosed(err)) throw err;
      });
      return 0;
    }),
  stdout: (p) => copyStream(p, "stdout"),
  stderr: (p) => copyStream(p, "stderr"),
};
