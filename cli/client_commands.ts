/**
 * Bodies of the client commands: parse → call the client library → print.
 *
 * @module
 */

import { type Anchor, comparePaths, parseGlob, type ProcCommand } from "../mod.ts";
import { type Parsed, UsageError } from "./args.ts";
import { openSession, type Session } from "./session.ts";
import type { Runner } from "./commands.ts";

const enc = new TextEncoder();

function out(text: string): void {
  const b = enc.encode(text);
  let off = 0;
  while (off < b.length) off += Deno.stdout.writeSync(b.subarray(off));
}

function args(p: Parsed, n: number, usage: string): string[] {
  const a = p.positionals.slice(1);
  if (a.length !== n) throw new UsageError(`usage: circuit ${p.positionals[0]} ${usage}`);
  return a;
}

const session = openSession;

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

async function withSession(p: Parsed, fn: (s: Session) => Promise<number>): Promise<number> {
  const s = await session(p);
  try {
    return await fn(s);
  } finally {
    s.client.close();
  }
}

function anchorOf(s: Session, path: string): Anchor {
  return s.client.walk(path);
}

/** The client commands of the core, by name. */
export const CLIENT_COMMANDS: Record<string, Runner> = {
  ls: (p) =>
    withSession(p, async (s) => {
      const [pattern] = args(p, 1, "[-l] [--depth] GLOB");
      const glob = parseGlob(pattern);
      const anchor = s.client.walk("/" + glob.path.join("/"));
      const entries = await anchor.ls({ recursive: glob.recursive, timeoutMs: s.timeoutMs });
      entries.sort((a, b) =>
        p.flags.depth ? compareDepthFirst(a.path, b.path) : comparePaths(a.path, b.path)
      );
      out(
        entries.map((e) => (p.flags.long ? `${e.kind.padEnd(15)} ${e.path}\n` : `${e.path}\n`))
          .join(""),
      );
      const failed = entries.filter((e) => e.error);
      if (failed.length === 0) return 0;
      const names = failed.map((e) => e.path).join(", ");
      throw new Error(`Listing failed for ${names}: ${failed[0].error}`);
    }),
  peek: (p) =>
    withSession(p, async (s) => {
      const [path] = args(p, 1, "ANCHOR");
      out(json(await anchorOf(s, path).peek({ timeoutMs: s.timeoutMs })));
      return 0;
    }),
  scrub: (p) =>
    withSession(p, async (s) => {
      const [path] = args(p, 1, "ANCHOR");
      await anchorOf(s, path).scrub({ timeoutMs: s.timeoutMs });
      return 0;
    }),
  stk: (p) =>
    withSession(p, async (s) => {
      const [path] = args(p, 1, "SERVER");
      out(json(await anchorOf(s, path).stk({ timeoutMs: s.timeoutMs })));
      return 0;
    }),
  join: (p) =>
    withSession(p, async (s) => {
      const [path, url] = args(p, 2, "SERVER URL");
      await anchorOf(s, path).join(url, { timeoutMs: s.timeoutMs ?? 15_000 });
      return 0;
    }),
  suicide: (p) =>
    withSession(p, async (s) => {
      const [path] = args(p, 1, "SERVER");
      await anchorOf(s, path).suicide({ timeoutMs: s.timeoutMs });
      return 0;
    }),
};

async function readStdin(): Promise<Uint8Array> {
  return new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
}

function writeOut(b: Uint8Array): void {
  let off = 0;
  while (off < b.length) off += Deno.stdout.writeSync(b.subarray(off));
}

async function copyStream(p: Parsed, which: "stdout" | "stderr"): Promise<number> {
  return await withSession(p, async (s) => {
    const [path] = args(p, 1, "PROC");
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
      const [path] = args(p, 1, "[--scrub] ANCHOR < JSON");
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
      const [sig, path] = args(p, 2, "SIGNAL PROC");
      await anchorOf(s, path).proc().signal(sig, { timeoutMs: s.timeoutMs });
      return 0;
    }),
  wait: (p) =>
    withSession(p, async (s) => {
      const [path] = args(p, 1, "PROC");
      out(json(await anchorOf(s, path).proc().wait({ timeoutMs: s.timeoutMs ?? 0 })));
      return 0;
    }),
  waitall: (p) =>
    withSession(p, async (s) => {
      args(p, 0, "< anchors, one a line");
      const paths = new TextDecoder().decode(await readStdin()).split("\n").map((l) => l.trim())
        .filter(Boolean);
      await Promise.all(
        paths.map((path) => anchorOf(s, path).proc().wait({ timeoutMs: s.timeoutMs ?? 0 })),
      );
      return 0;
    }),
  stdin: (p) =>
    withSession(p, async (s) => {
      const [path] = args(p, 1, "PROC");
      const call = anchorOf(s, path).open("stdin", null, {
        upload: true,
        timeoutMs: s.timeoutMs,
      });
      await Promise.all([Deno.stdin.readable.pipeTo(call.upload!), call.result]);
      return 0;
    }),
  stdout: (p) => copyStream(p, "stdout"),
  stderr: (p) => copyStream(p, "stderr"),
};
