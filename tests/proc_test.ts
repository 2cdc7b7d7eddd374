/**
 * Process elements against real servers and real processes: the CLI contract
 * (mkproc, peek, wait, waitall, signal, stdin, stdout, stderr, scrub, --scrub), retained
 * and streamed output, pacing and the output bound, killing process groups, and the
 * client library's `Proc`.
 */

import { createHash } from "node:crypto";
import {
  CircuitError,
  type Client,
  connect,
  exitStatus,
  isStdinClosed,
  type Proc,
} from "../mod.ts";
import {
  assert,
  assertEquals,
  assertOneLineError,
  cli,
  type CliResult,
  Cluster,
  Server,
  waitFor,
} from "./_harness.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** `circuit mkproc -d URL [flags] PATH < cmd`. */
function mkproc(s: Server, path: string, cmd: unknown, flags: string[] = []): Promise<CliResult> {
  return cli(["mkproc", "-d", s.url, ...flags, path], {
    stdin: typeof cmd === "string" ? cmd : JSON.stringify(cmd),
  });
}

async function mkprocOk(s: Server, path: string, cmd: unknown, flags: string[] = []) {
  const r = await mkproc(s, path, cmd, flags);
  assertEquals([r.code, r.stdout, r.stderr], [0, "", ""], `mkproc ${path}`);
}

/** Run a CLI command that must succeed; its stdout. */
async function ok(args: string[], stdin?: string): Promise<string> {
  const r = await cli(args, stdin === undefined ? {} : { stdin });
  assertEquals([r.code, r.stderr], [0, ""], `circuit ${args.join(" ")}`);
  return r.stdout;
}

/** Parse `peek`/`wait` output, checking it is tab-indented JSON and a newline. */
function parseState(text: string): Record<string, unknown> {
  const v = JSON.parse(text);
  assertEquals(text, JSON.stringify(v, null, "\t") + "\n", "tab-indented JSON and a newline");
  return v;
}

/** One line of /proc/PID/stat: state and process group, or null when gone. */
function procStat(pid: number): { comm: string; state: string; pgrp: number } | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const [state, , pgrp] = stat.slice(close + 2).split(" ");
    return { comm, state, pgrp: Number(pgrp) };
  } catch {
    return null;
  }
}

/** Live (not zombie) processes in process group `pgid` whose command is `comm`. */
function groupMembers(pgid: number, comm: string): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const st = procStat(Number(e.name));
    if (st && st.pgrp === pgid && st.comm === comm && st.state !== "Z") out.push(Number(e.name));
  }
  return out.sort((a, b) => a - b);
}

/** Wait until `n` live sleeps are in process group `pgid`; their pids. */
async function sleepsOf(pgid: number, n: number): Promise<number[]> {
  let found: number[] = [];
  await waitFor(
    () => (found = groupMembers(pgid, "sleep")).length === n,
    `${n} sleeps in the group`,
  );
  return found;
}

/** Dead: gone, or a zombie (this container's PID 1 does not reap orphans). */
function dead(pid: number): boolean {
  const st = procStat(pid);
  return st === null || st.state === "Z";
}

/** SHA-256 of a byte stream, hashed as it arrives; also its length. */
async function sha256(stream: ReadableStream<Uint8Array>): Promise<[string, number]> {
  const h = createHash("sha256");
  let n = 0;
  for await (const c of stream) {
    h.update(c);
    n += c.length;
  }
  return [h.digest("hex"), n];
}

/** SHA-256 and length of what a command prints, run here. */
async function localSha256(path: string, args: string[]): Promise<[string, number]> {
  const child = new Deno.Command(path, { args, stdout: "piped", stderr: "null" }).spawn();
  const r = await sha256(child.stdout);
  assertEquals((await child.status).code, 0, `${path} ran locally`);
  return r;
}

/** `circuit ARGS…` as a child whose output the caller consumes; killed on dispose. */
function spawnCli(args: string[]): Deno.ChildProcess & AsyncDisposable {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return Object.assign(child, {
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.status;
      for (const s of [child.stdout, child.stderr]) {
        if (!s.locked) await s.cancel().catch(() => {});
      }
    },
  });
}

/**
 * Wait until the server serves a call on `path` (a reader: the process's stdin is not
 * open yet), i.e. the reader is attached to the output buffer.
 */
async function readerAttached(client: Client, s: Server, path: string): Promise<void> {
  await waitFor(async () => {
    const inflight = (await client.walk(s.path).stk()).InFlight as Array<{ Path: string }>;
    return inflight.some((f) => f.Path === path);
  }, `a reader of ${path} to be attached`);
}

function seqText(from: number, to: number): string {
  let s = "";
  for (let i = from; i <= to; i++) s += `${i}\n`;
  return s;
}

async function text(stream: ReadableStream<Uint8Array>): Promise<string> {
  return await new Response(stream).text();
}

async function writeAll(proc: Proc, chunks: string[]): Promise<void> {
  const w = proc.stdin.getWriter();
  for (const c of chunks) await w.write(enc.encode(c));
  await w.close();
}

// 1. The contract's walkthrough.

Deno.test("mkproc, ls -l, peek, wait, stdout and scrub follow the contract's walkthrough", async () => {
  await using s = await Server.start();
  const p = `${s.path}/hello/ls`;
  const r = await cli(["mkproc", "-d", s.url, p], {
    stdin: '{"Path": "/bin/ls", "Args": ["/"]}\n',
  });
  assertEquals([r.code, r.stdout, r.stderr], [0, "", ""], "mkproc");
  assertEquals(
    await ok(["ls", "-l", "-d", s.url, "/..."]),
    `server          ${s.path}\n·               ${s.path}/hello\nproc            ${p}\n`,
  );
  const waited = parseState(await ok(["wait", "-d", s.url, p]));
  const peeked = parseState(await ok(["peek", "-d", s.url, p]));
  for (const v of [waited, peeked]) {
    assertEquals(Object.keys(v), ["Cmd", "Exit", "Phase", "Pid", "ExitCode", "Signal"]);
    assertEquals(v.Cmd, { Env: null, Dir: "", Path: "/bin/ls", Args: ["/"], Scrub: false });
    assertEquals([v.Exit, v.Phase, v.ExitCode, v.Signal], [null, "exited", 0, null]);
    assert(typeof v.Pid === "number" && v.Pid > 0, `Pid ${v.Pid}`);
  }
  const listing = [...Deno.readDirSync("/")].map((e) => e.name).filter((n) => !n.startsWith("."))
    .sort();
  const out = await ok(["stdout", "-d", s.url, p]);
  assertEquals(out.split("\n").filter(Boolean).sort(), listing, "stdout is the listing of /");
  assertEquals(await ok(["stderr", "-d", s.url, p]), "", "nothing on stderr");
  assertEquals(await ok(["scrub", "-d", s.url, p]), "");
  assertEquals(await ok(["ls", "-d", s.url, "/..."]), `${s.path}\n`, "anchor and parent gone");
  assertEquals(await ok(["peek", "-d", s.url, p]), "null\n");
});

// 2. Command fields.

Deno.test("Env absent inherits the server's environment; a list is exactly the environment", async () => {
  await using s = await Server.start({ env: { CIRCUIT_PROC_TEST_MARK: "inherited-42" } });
  await mkprocOk(s, `${s.path}/inherit`, { Path: "/usr/bin/env" });
  await mkprocOk(s, `${s.path}/exact`, { Path: "/usr/bin/env", Env: ["A=1", "B=x=y"] });
  await mkprocOk(s, `${s.path}/null`, { Path: "/usr/bin/env", Env: null });
  await ok(["wait", "-d", s.url, `${s.path}/inherit`]);
  await ok(["wait", "-d", s.url, `${s.path}/exact`]);
  await ok(["wait", "-d", s.url, `${s.path}/null`]);
  const inherited = (await ok(["stdout", "-d", s.url, `${s.path}/inherit`])).split("\n");
  assert(inherited.includes("CIRCUIT_PROC_TEST_MARK=inherited-42"), inherited.join(" "));
  assert(inherited.some((l) => l.startsWith("PATH=")), "PATH inherited");
  assertEquals(await ok(["stdout", "-d", s.url, `${s.path}/exact`]), "A=1\nB=x=y\n");
  const nul = await ok(["stdout", "-d", s.url, `${s.path}/null`]);
  assert(nul.includes("CIRCUIT_PROC_TEST_MARK=inherited-42\n"), "Env null inherits too");
});

Deno.test("Dir sets the working directory; a bare Path is not searched in $PATH", async () => {
  await using s = await Server.start();
  await mkprocOk(s, `${s.path}/pwd`, { Path: "/bin/pwd", Dir: "/tmp" });
  await ok(["wait", "-d", s.url, `${s.path}/pwd`]);
  assertEquals(await ok(["stdout", "-d", s.url, `${s.path}/pwd`]), "/tmp\n");

  const bare = await mkproc(s, `${s.path}/bare`, { Path: "ls", Dir: "/" });
  assertOneLineError(bare, /^exec error: /);
  const v = parseState(await ok(["peek", "-d", s.url, `${s.path}/bare`]));
  assertEquals([v.Phase, v.Pid, v.ExitCode, v.Signal], ["unknown", null, null, null]);
  const body = (v.Exit as { Body: string }).Body;
  assert(body.startsWith("exec error:"), body);
  const missing = await mkproc(s, `${s.path}/missing`, { Path: "/no/such/program" });
  assertOneLineError(missing, /^exec error: .*No such file/);
});

Deno.test("mkproc matches keys case-insensitively and ignores unknown keys", async () => {
  await using s = await Server.start();
  const p = `${s.path}/echo`;
  await mkprocOk(s, p, { pAtH: "/bin/echo", ARGS: ["hi", "there"], dir: "/", Color: "blue" });
  const v = parseState(await ok(["wait", "-d", s.url, p]));
  assertEquals(v.Cmd, {
    Env: null,
    Dir: "/",
    Path: "/bin/echo",
    Args: ["hi", "there"],
    Scrub: false,
  });
  assertEquals(await ok(["stdout", "-d", s.url, p]), "hi there\n");
});

// 3. Exit and signals.

Deno.test("wait reports a non-zero exit as Exit.Body, ExitCode and Phase exited", async () => {
  await using s = await Server.start();
  const p = `${s.path}/three`;
  await mkprocOk(s, p, { Path: "/bin/sh", Args: ["-c", "echo oops >&2; exit 3"] });
  const v = parseState(await ok(["wait", "-d", s.url, p]));
  assertEquals(v.Exit, { Body: "exit status 3" });
  assertEquals([v.Phase, v.ExitCode, v.Signal], ["exited", 3, null]);
  assertEquals(await ok(["stderr", "-d", s.url, p]), "oops\n");
  assertEquals(parseState(await ok(["peek", "-d", s.url, p])), v, "peek equals wait");
});

Deno.test("signal names are case-insensitive with or without SIG and end the process", async () => {
  await using s = await Server.start();
  const cases: Array<[string, string, string]> = [
    ["TERM", "SIGTERM", "signal: terminated"],
    ["kill", "SIGKILL", "signal: killed"],
    ["SIGKILL", "SIGKILL", "signal: killed"],
    ["sigInt", "SIGINT", "signal: interrupt"],
  ];
  await Promise.all(
    cases.map((_, i) => mkprocOk(s, `${s.path}/sleep${i}`, { Path: "/bin/sleep", Args: ["100"] })),
  );
  for (const [i, [name, sig, body]] of cases.entries()) {
    const p = `${s.path}/sleep${i}`;
    assertEquals(parseState(await ok(["peek", "-d", s.url, p])).Phase, "running");
    assertEquals(await ok(["signal", "-d", s.url, name, p]), "", `signal ${name}`);
    const v = parseState(await ok(["wait", "-d", s.url, p]));
    assertEquals([v.Phase, v.Exit, v.Signal, v.ExitCode], ["signaled", { Body: body }, sig, null]);
  }
});

// 4. wait does not depend on stdin.

Deno.test("wait on /bin/true returns promptly without anyone touching stdin", async () => {
  await using s = await Server.start();
  await using client = await connect(s.url);
  const t = performance.now();
  const proc = await client.walk(`${s.path}/t`).makeProc({ Path: "/bin/true" });
  const v = await proc.wait({ timeoutMs: 5000 });
  const ms = performance.now() - t;
  assertEquals([v.Phase, v.Exit, v.ExitCode], ["exited", null, 0]);
  assert(ms < 1500, `library wait took ${ms.toFixed(0)} ms`);
  // The CLI too; --timeout turns a hang into a failure instead of a stuck test.
  await mkprocOk(s, `${s.path}/t2`, { Path: "/bin/true" });
  const w = await cli(["wait", "--timeout", "5s", "-d", s.url, `${s.path}/t2`]);
  assertEquals([w.code, w.stderr], [0, ""]);
  assertEquals(parseState(w.stdout).Phase, "exited");
});

// 5. Live streaming.

Deno.test("stdout is delivered line by line while the process runs", async () => {
  await using s = await Server.start();
  await using client = await connect(s.url);
  const proc = await client.walk(`${s.path}/ticker`).makeProc({
    Path: "/bin/sh",
    Args: ["-c", "for i in 1 2 3; do echo $i; sleep 1; done"],
  });
  const exited = proc.wait().then(() => performance.now());
  const reader = proc.stdout.getReader();
  const arrivals: Array<[string, number]> = [];
  let buf = "";
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    buf += dec.decode(r.value);
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
      arrivals.push([buf.slice(0, i), performance.now()]);
      if (arrivals.length === 1) {
        assertEquals((await proc.peek()).Phase, "running", "running at the first line");
      }
      buf = buf.slice(i + 1);
    }
  }
  const end = await exited;
  assertEquals(arrivals.map(([l]) => l), ["1", "2", "3"]);
  assert(
    end - arrivals[0][1] > 1500,
    `first line ${(end - arrivals[0][1]).toFixed(0)} ms before exit`,
  );
  assert(arrivals[1][1] - arrivals[0][1] > 500, "lines arrive apart, not in one batch");
  assert(arrivals[2][1] - arrivals[1][1] > 500, "lines arrive apart, not in one batch");
});

// 6. Retained output and several readers.

Deno.test("output is kept after exit and two concurrent readers both get all of it", async () => {
  await using s = await Server.start();
  await using client = await connect(s.url);
  const proc = await client.walk(`${s.path}/seq`).makeProc({
    Path: "/usr/bin/seq",
    Args: ["1", "100000"],
  });
  const a = proc.output("stdout"), b = proc.output("stdout");
  const [ta, tb] = await Promise.all([text(a.readable), text(b.readable)]);
  const want = seqText(1, 100000);
  assert(ta === want, `first reader got ${ta.length} of ${want.length} chars`);
  assert(tb === want, `second reader got ${tb.length} of ${want.length} chars`);
  assertEquals([await a.dropped, await b.dropped], [0, 0]);
  assertEquals((await proc.wait()).Phase, "exited");
  assert(await text(proc.stdout) === want, "a reader after exit gets it all again");
  assertEquals(await text(proc.stderr), "");
});

Deno.test("a stdout reader killed midway loses nothing for the next reader", async () => {
  await using s = await Server.start();
  await using client = await connect(s.url);
  const p = `${s.path}/gated`;
  const proc = await client.walk(p).makeProc({
    Path: "/bin/sh",
    Args: ["-c", "seq 1 1000; read x; seq 1001 2000"],
  });
  await using child = spawnCli(["stdout", "-d", s.url, p]);
  const stderr = text(child.stderr);
  const reader = child.stdout.getReader();
  let got = "";
  while (!got.includes("1000\n")) {
    const r = await reader.read();
    assert(!r.done, `reader ended early after ${JSON.stringify(got.slice(-20))}`);
    got += dec.decode(r.value);
  }
  child.kill("SIGKILL");
  await reader.cancel();
  assertEquals((await child.status).signal, "SIGKILL");
  await stderr;
  assertEquals((await proc.peek()).Phase, "running", "the process waits for its input");
  await writeAll(proc, ["go\n"]);
  assertEquals((await proc.wait({ timeoutMs: 10_000 })).Phase, "exited");
  assert(await ok(["stdout", "-d", s.url, p]) === seqText(1, 2000), "next reader gets all");
});

// 7. Large output intact.

Deno.test("200 MB of stdout arrive intact through the library and through the CLI", async () => {
  await using s = await Server.start({ args: ["--output-bound", "4MiB"] });
  await using client = await connect(s.url);
  const [want, wantLen] = await localSha256("/usr/bin/seq", ["1", "25000000"]);
  assert(wantLen > 200_000_000, `${wantLen} bytes`);
  // Released only once the reader is attached, so nothing may be dropped before it.
  const gated = { Path: "/bin/sh", Args: ["-c", "read x; exec seq 1 25000000"] };

  const lib = await client.walk(`${s.path}/big1`).makeProc(gated);
  const out = lib.output("stdout");
  await readerAttached(client, s, lib.anchor.path);
  await writeAll(lib, ["go\n"]);
  const t0 = performance.now();
  assertEquals(await sha256(out.readable), [want, wantLen], "library stream");
  const libMs = performance.now() - t0;
  assertEquals(await out.dropped, 0);
  assertEquals((await lib.wait()).Phase, "exited");

  const viaCli = await client.walk(`${s.path}/big2`).makeProc(gated);
  await using child = spawnCli(["stdout", "-d", s.url, viaCli.anchor.path]);
  const hashed = Promise.all([sha256(child.stdout), text(child.stderr), child.status]);
  await readerAttached(client, s, viaCli.anchor.path);
  await writeAll(viaCli, ["go\n"]);
  const t1 = performance.now();
  const [got, errText, status] = await hashed;
  const cliMs = performance.now() - t1;
  assertEquals([status.code, errText], [0, ""], "CLI stdout");
  assertEquals(got, [want, wantLen], "CLI stream");
  assert(libMs < 20_000 && cliMs < 20_000, `took ${libMs.toFixed(0)} / ${cliMs.toFixed(0)} ms`);
});

// 8. Unread output is bounded.

Deno.test("unread output holds the process only for --output-hold, never grows the server past the bound", async () => {
  await using s = await Server.start({ args: ["--output-bound", "1MiB", "--output-hold", "1s"] });
  await using client = await connect(s.url);
  const server = client.walk(s.path);
  const rss = async () => ((await server.stk()).Memory as { rss: number }).rss;
  // Warm up the same code paths first, so the baseline is not a cold server.
  const warm = await client.walk(`${s.path}/warm`).makeProc({
    Path: "/usr/bin/head",
    Args: ["-c", "10000000", "/dev/zero"],
  });
  await warm.wait({ timeoutMs: 20_000 });
  await warm.scrub();
  const before = await rss();

  const p = `${s.path}/zeros`;
  const proc = await client.walk(p).makeProc({
    Path: "/usr/bin/head",
    Args: ["-c", "100000000", "/dev/zero"],
  });
  const v = await proc.wait({ timeoutMs: 20_000 });
  assertEquals([v.Phase, v.ExitCode], ["exited", 0]);
  const after = await rss();
  assert(after - before < 30 * 2 ** 20, `rss grew ${((after - before) / 2 ** 20).toFixed(1)} MiB`);

  const out = proc.output("stdout");
  const [, n] = await sha256(out.readable);
  assertEquals(n, 1048576, "a reader gets exactly the bound");
  assertEquals(await out.dropped, 100_000_000 - 1048576);
  const r = await cli(["stdout", "-d", s.url, p]);
  assertEquals([r.code, r.stdout.length, r.stdout.replaceAll("\0", "")], [0, 1048576, ""]);
  assertEquals(
    r.stderr,
    `circuit: ${100_000_000 - 1048576} bytes of stdout were dropped before this read ` +
      "(nobody was reading)\n",
  );
});

Deno.test("mkproc, then stdout as a second command, gets every byte of a fast writer (--output-hold)", async () => {
  await using s = await Server.start();
  const p = `${s.path}/fast`;
  const size = 20_000_000; // five times the default bound, written in well under a second
  await mkprocOk(s, p, { Path: "/usr/bin/head", Args: ["-c", String(size), "/dev/zero"] });
  await new Promise((r) => setTimeout(r, 500)); // a slow script between the two commands
  const r = await cli(["stdout", "-d", s.url, p]);
  assertEquals([r.code, r.stdout.length, r.stderr], [0, size, ""], "nothing dropped");
  assertEquals(parseState(await ok(["wait", "-d", s.url, p])).ExitCode, 0);

  // With the hold off, the same gap loses the oldest bytes, and stdout says so.
  await using s0 = await Server.start({ args: ["--output-hold", "0"] });
  const p0 = `${s0.path}/fast`;
  await mkprocOk(s0, p0, { Path: "/usr/bin/head", Args: ["-c", String(size), "/dev/zero"] });
  assertEquals(parseState(await ok(["wait", "-d", s0.url, p0])).ExitCode, 0);
  const r0 = await cli(["stdout", "-d", s0.url, p0]);
  assertEquals([r0.code, r0.stdout.length], [0, 4 * 2 ** 20]);
  assert(r0.stderr.includes(`${size - 4 * 2 ** 20} bytes of stdout were dropped`), r0.stderr);
});

// 9. Pacing.

Deno.test("a slow reader attached from the start paces the process and loses nothing", async () => {
  await using s = await Server.start({ args: ["--output-bound", "64KiB"] });
  await using client = await connect(s.url);
  const p = `${s.path}/paced`;
  // The process prints only once released, so the reader is surely attached first.
  const proc = await client.walk(p).makeProc({
    Path: "/bin/sh",
    Args: ["-c", "read x; exec seq 1 2000000"],
  });
  const out = proc.output("stdout");
  await readerAttached(client, s, p);
  await writeAll(proc, ["go\n"]);
  const reader = out.readable.getReader();
  const first = await reader.read();
  assert(!first.done, "some output");
  const chunks: Uint8Array[] = [first.value];
  await new Promise((r) => setTimeout(r, 500));
  assertEquals((await proc.peek()).Phase, "running", "the process waits for the slow reader");
  for (let i = 0;; i++) {
    const r = await reader.read();
    if (r.done) break;
    chunks.push(r.value);
    if (i % 4 === 0) await new Promise((r) => setTimeout(r, 1));
  }
  const sd = new TextDecoder();
  const got = chunks.map((c) => sd.decode(c, { stream: true })).join("") + sd.decode();
  const want = seqText(1, 2000000);
  assert(got === want, `got ${got.length} of ${want.length} chars`);
  assertEquals(await out.dropped, 0);
  assertEquals((await proc.wait()).Phase, "exited");
});

// 10. Scrub kills the group.

Deno.test("scrub kills the process's children too", async () => {
  await using s = await Server.start();
  const p = `${s.path}/family`;
  await mkprocOk(s, p, { Path: "/bin/sh", Args: ["-c", "sleep 1000 & sleep 1000 & wait"] });
  const pid = parseState(await ok(["peek", "-d", s.url, p])).Pid as number;
  const sleeps = await sleepsOf(pid, 2);
  assertEquals(await ok(["scrub", "-d", s.url, p]), "");
  await waitFor(() => [pid, ...sleeps].every(dead), "the shell and both sleeps to die", 2000);
  assertEquals(await ok(["peek", "-d", s.url, p]), "null\n");
});

Deno.test("scrub KILLs a process that ignores TERM after --scrub-grace", async () => {
  await using s = await Server.start({ args: ["--scrub-grace", "1s"] });
  const p = `${s.path}/stubborn`;
  await mkprocOk(s, p, { Path: "/bin/sh", Args: ["-c", "trap '' TERM; sleep 1000"] });
  const pid = parseState(await ok(["peek", "-d", s.url, p])).Pid as number;
  const [sleep] = await sleepsOf(pid, 1);
  await using client = await connect(s.url);
  const t = performance.now();
  const scrubbed = client.walk(p).scrub().then(() => performance.now() - t);
  await new Promise((r) => setTimeout(r, 500));
  assert(!dead(sleep), "the process ignored TERM and is alive within the grace");
  const ms = await scrubbed;
  assert(ms >= 950, `scrub returned after ${ms.toFixed(0)} ms, before the grace ended`);
  assert(ms < 5000, `scrub took ${ms.toFixed(0)} ms`);
  await waitFor(() => dead(pid) && dead(sleep), "the stubborn processes to die", 2000);
});

// 11. Server stop.

Deno.test("SIGTERM to the server kills its processes and the server exits 0", async () => {
  await using s = await Server.start();
  const p = `${s.path}/orphan`;
  await mkprocOk(s, p, { Path: "/bin/sh", Args: ["-c", "sleep 1000 & wait"] });
  const pid = parseState(await ok(["peek", "-d", s.url, p])).Pid as number;
  const sleeps = await sleepsOf(pid, 1);
  s.kill("SIGTERM");
  assertEquals((await s.status).code, 0, "server exit code");
  await waitFor(() => [pid, ...sleeps].every(dead), "the processes to die", 2000);
});

// 12. waitall across servers.

Deno.test("waitall over processes on three servers returns 0 only after all have exited", async () => {
  await using c = await new Cluster().chain(3);
  const [a] = c.servers;
  await waitFor(
    async () => (await cli(["ls", "-d", a.url, "/"])).stdout.split("\n").length === 4,
    "3 members",
  );
  await using client = await connect(a.url);
  const secs = ["0.2", "0.5", "1.5"];
  const paths = c.servers.map((s, i) => `${s.path}/nap${i}`);
  const procs = await Promise.all(
    paths.map((p, i) => client.walk(p).makeProc({ Path: "/bin/sleep", Args: [secs[i]] })),
  );
  const r = await cli(["waitall", "-d", a.url], { stdin: paths.join("\n") + "\n" });
  assertEquals([r.code, r.stdout, r.stderr], [0, "", ""], "waitall");
  for (const [i, proc] of procs.entries()) {
    assertEquals((await proc.peek()).Phase, "exited", `${paths[i]} after waitall`);
  }
});

Deno.test("wait and stdout through another server fail with one line when the process's server dies", async () => {
  await using c = await new Cluster().chain(2);
  const [a, b] = c.servers;
  await waitFor(
    async () =>
      (await cli(["ls", "-d", a.url, "/"])).stdout === [a.path, b.path].sort().join("\n") + "\n",
    "2 members",
  );
  const p = `${b.path}/remote`;
  await mkprocOk(a, p, { Path: "/bin/sleep", Args: ["100"] });
  const waiting = cli(["wait", "-d", a.url, p]);
  const reading = cli(["stdout", "-d", a.url, p]);
  try {
    await waitFor(async () => {
      const r = await cli(["stk", "-d", a.url, b.path]);
      const inflight = JSON.parse(r.stdout).InFlight as Array<{ Path: string }>;
      return inflight.filter((f) => f.Path === p).length === 2;
    }, "wait and stdout to reach the process's server");
  } finally {
    b.kill("SIGKILL");
    await Promise.allSettled([waiting, reading]);
  }
  const [w, r] = await Promise.all([waiting, reading]);
  assertOneLineError(w, /closed|lost|unreachable|stopped/i);
  assertOneLineError(r, /closed|lost|unreachable|stopped/i);
  assertEquals([w.stdout, r.stdout], ["", ""]);
});

// 13. Scrub after exit.

Deno.test("mkproc --scrub and Scrub true remove the anchor once the process exits", async () => {
  await using s = await Server.start();
  const flag = `${s.path}/flag/p`, field = `${s.path}/field/p`;
  await mkprocOk(s, flag, { Path: "/bin/sh", Args: ["-c", "read x"] }, ["--scrub"]);
  await mkprocOk(s, field, { Path: "/bin/sh", Args: ["-c", "read x"], Scrub: true });
  const before = await ok(["ls", "-d", s.url, "/..."]);
  assert(before.includes(`${flag}\n`) && before.includes(`${field}\n`), before);
  assertEquals(parseState(await ok(["peek", "-d", s.url, flag])).Cmd, {
    Env: null,
    Dir: "",
    Path: "/bin/sh",
    Args: ["-c", "read x"],
    Scrub: true,
  });
  for (const p of [flag, field]) {
    assertEquals(await ok(["stdin", "-d", s.url, p], "done\n"), "");
  }
  await waitFor(
    async () => (await cli(["ls", "-d", s.url, "/..."])).stdout === `${s.path}\n`,
    "both anchors to disappear",
  );
  assertEquals(await ok(["peek", "-d", s.url, flag]), "null\n");
});

// 14. Errors.

Deno.test("bad mkproc input and bad signals fail with one line and exit 1", async () => {
  await using s = await Server.start();
  assertOneLineError(await mkproc(s, `${s.path}/j`, "{nope"), /^command json not parsing: /);
  assertOneLineError(await mkproc(s, `${s.path}/j`, ""), /^command json not parsing: /);
  assertOneLineError(
    await mkproc(s, `${s.path}/j`, { Args: ["x"] }),
    /^command json not parsing: .*Path/,
  );
  assertOneLineError(
    await mkproc(s, `${s.path}/j`, { Path: "/bin/true", Env: "A=1" }),
    /^command json not parsing: .*Env/,
  );
  assertEquals(await ok(["ls", "-d", s.url, "/..."]), `${s.path}\n`, "nothing was made");

  const p = `${s.path}/sleeper`;
  await mkprocOk(s, p, { Path: "/bin/sleep", Args: ["100"] });
  assertOneLineError(await cli(["signal", "-d", s.url, "BOGUS", p]), /BOGUS/);
  assertEquals(parseState(await ok(["peek", "-d", s.url, p])).Phase, "running");
  await ok(["signal", "-d", s.url, "KILL", p]);
  await ok(["wait", "-d", s.url, p]);
  assertOneLineError(await cli(["signal", "-d", s.url, "TERM", p]), /already exited/);
  assertOneLineError(await mkproc(s, p, { Path: "/bin/true" }), /anchor already has an element/);
});

Deno.test("proc verbs on a server anchor or an empty anchor fail with one line", async () => {
  await using s = await Server.start();
  const empty = `${s.path}/nothing`;
  for (const verb of [["wait"], ["stdout"], ["stderr"], ["signal", "TERM"]]) {
    for (const target of [s.path, empty]) {
      const r = await cli([...verb, "-d", s.url, target]);
      assertOneLineError(r, target === s.path ? /server/ : /No element at/);
      assertEquals(r.stdout, "", `${verb[0]} ${target} printed nothing`);
    }
  }
  const stdin = await cli(["stdin", "-d", s.url, empty], { stdin: "x" });
  assertOneLineError(stdin, /No element at/);
  assertOneLineError(await mkproc(s, s.path, { Path: "/bin/true" }), /server anchor/);
});

// 15. The library.

Deno.test("makeProc rejects an exec error with CircuitError bad request", async () => {
  await using s = await Server.start();
  await using client = await connect(s.url);
  const err = await client.walk(`${s.path}/x`).makeProc({ Path: "/no/such" }).then(
    () => null,
    (e) => e,
  );
  assert(err instanceof CircuitError, `got ${err}`);
  assertEquals(err.code, "bad request");
  assert(err.message.startsWith("exec error:"), err.message);
  assertEquals((await client.walk(`${s.path}/x`).proc().peek()).Phase, "unknown");
  const sig = await client.walk(`${s.path}/x`).proc().signal("TERM").then(() => null, (e) => e);
  assert(sig instanceof CircuitError && /never started/.test(sig.message), `got ${sig}`);
});

Deno.test("Proc.stdin takes several writes and a close; cat echoes all of it", async () => {
  await using s = await Server.start();
  await using client = await connect(s.url);
  const proc = await client.walk(`${s.path}/cat`).makeProc({ Path: "/bin/cat" });
  const out = text(proc.stdout);
  await writeAll(proc, ["one\n", "two\n", "three"]);
  assertEquals(await out, "one\ntwo\nthree");
  assertEquals((await proc.wait()).Phase, "exited");
});

Deno.test("Proc.wait rejects with aborted when its signal aborts", async () => {
  await using s = await Server.start();
  await using client = await connect(s.url);
  const proc = await client.walk(`${s.path}/long`).makeProc({
    Path: "/bin/sleep",
    Args: ["100"],
  });
  const ac = new AbortController();
  const waiting = proc.wait({ signal: ac.signal }).then(() => null, (e) => e);
  setTimeout(() => ac.abort(), 100);
  const err = await waiting;
  assert(err instanceof CircuitError, `got ${err}`);
  assertEquals(err.code, "aborted");
  assertEquals((await proc.peek()).Phase, "running", "aborting wait leaves the process");
  await proc.scrub();
});

Deno.test("the operation log records make proc, signal and scrub", async () => {
  await using s = await Server.start();
  const p = `${s.path}/logged`;
  {
    await using client = await connect(s.url);
    const proc = await client.walk(p).makeProc({ Path: "/bin/sleep", Args: ["100"] });
    await proc.signal("TERM");
    await proc.wait();
    await proc.scrub();
  }
  const recs = (await Deno.readTextFile(`${s.varDir}/ops.log`)).trim().split("\n")
    .map((l) => JSON.parse(l)).filter((r) => r.path === p);
  const ops = recs.map((r) => r.op);
  for (const op of ["make proc", "signal", "scrub"]) assert(ops.includes(op), `${op} in ${ops}`);
  assert(ops.indexOf("make proc") < ops.indexOf("signal"), "in order");
  assert(ops.indexOf("signal") < ops.indexOf("scrub"), "in order");
  assert(recs.every((r) => r.outcome === "ok"), JSON.stringify(recs));
});

for (const launch of ["setsid", "detached"] as const) {
  Deno.test(`processes started the ${launch} way: own session and group, exec errors, early signals`, async () => {
    await using s = await Server.start(
      launch === "detached" ? { env: { CIRCUIT_NO_SETSID: "1" } } : {},
    );
    await using client = await connect(s.url);
    // Its own session and process group, led by the program itself (same PID).
    const p = await client.walk(`${s.path}/own`).makeProc({ Path: "/bin/sleep", Args: ["30"] });
    const pid = (await p.peek()).Pid!;
    await waitFor(() => procStat(pid)?.comm === "sleep", "sleep running");
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const [, , pgrp, session] = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
    assertEquals([pgrp, session], [pid, pid], "process group and session");
    await p.scrub();

    // The common exec failures are exec errors, worded as the runtime words them.
    const plain = await Deno.makeTempFile();
    await Deno.chmod(plain, 0o644);
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ["nodir", { Path: "/bin/true", Dir: "/no/such/dir" }, /No such cwd/],
      ["missing", { Path: "/no/such/program" }, /No such file or directory/],
      ["notexec", { Path: plain }, /Permission denied/],
      ["dir", { Path: "/tmp" }, /Permission denied/],
      ["relative", { Path: "true", Dir: "/bin" }, /^$/],
    ];
    for (const [name, cmd, want] of cases) {
      const got = await client.walk(`${s.path}/${name}`).makeProc(cmd as never).then(
        async (proc) => (await proc.wait(), ""),
        (e: Error) => e.message,
      );
      if (want.source === "^$") assertEquals(got, "", name);
      else assert(got.startsWith("exec error: ") && want.test(got), `${name}: ${got}`);
    }
    await Deno.remove(plain);

    // A signal sent the moment makeProc returns reaches the process.
    for (let i = 0; i < 10; i++) {
      const q = await client.walk(`${s.path}/early${i}`).makeProc({
        Path: "/bin/sleep",
        Args: ["30"],
      });
      await q.signal("TERM");
      const st = await q.wait({ timeoutMs: 5000 });
      assertEquals([st.Phase, st.Signal], ["signaled", "SIGTERM"], `early signal ${i}`);
    }
  });
}

// What a user's acceptance run found.

Deno.test("Proc.stdin reports the server's reason: nothing there, not a process, taken", async () => {
  await using s = await Server.start();
  await using client = await connect(s.url);
  const enc1 = enc.encode("lost\n");
  const fails = async (w: WritableStream<Uint8Array>) => {
    const writer = w.getWriter();
    const e = await writer.write(enc1).then(() => writer.close()).then(() => null, (e) => e);
    assert(e instanceof CircuitError, `writing and closing must fail, got ${e}`);
    return e;
  };
  assertEquals((await fails(client.walk(`${s.path}/nothing`).proc().stdin)).code, "not found");
  await client.walk(`${s.path}/ch`).makeChan(1);
  assertEquals((await fails(client.walk(`${s.path}/ch`).proc().stdin)).code, "bad request");
  const cat = await client.walk(`${s.path}/cat`).makeProc({ Path: "/bin/cat" });
  const out = text(cat.stdout);
  const first = cat.stdin.getWriter();
  await first.write(enc.encode("A"));
  const second = await fails(client.walk(`${s.path}/cat`).proc().openStdin());
  assertEquals(second.code, "busy");
  await first.close();
  assertEquals(await out, "A");
  // A process that stopped reading: writes fail with closed, told apart by isStdinClosed.
  const quit = await client.walk(`${s.path}/quit`).makeProc({ Path: "/bin/true" });
  await quit.wait();
  const w = quit.stdin.getWriter();
  let e: unknown = null;
  for (let i = 0; i < 100 && !e; i++) {
    e = await w.write(new Uint8Array(65536)).then(() => null, (x) => x);
  }
  assert(isStdinClosed(e), `writes to an exited process fail as a closed pipe, got ${e}`);
});

Deno.test("stdin to a process that has exited: small and large input alike exit 0", async () => {
  await using s = await Server.start();
  for (const [name, input] of [["small", enc.encode("hi\n")], ["large", new Uint8Array(1e6)]]) {
    const p = `${s.path}/done-${name}`;
    await mkprocOk(s, p, { Path: "/bin/true" });
    await ok(["wait", "-d", s.url, p]);
    const r = await cli(["stdin", "-d", s.url, p], { stdin: input as Uint8Array });
    assertEquals([r.code, r.stderr], [0, ""], `${name} input`);
    // stdin is one stream: once a writer has ended it, it stays closed.
    assertOneLineError(
      await cli(["stdin", "-d", s.url, p], { stdin: input as Uint8Array }),
      /an earlier writer already closed stdin/,
    );
  }
  // An endless input ends when the process no longer reads it: exit 0, no spinning.
  const q0 = `${s.path}/endless`;
  await mkprocOk(s, q0, { Path: "/bin/sh", Args: ["-c", "exec head -c 10"] });
  const t0 = performance.now();
  const yes = await new Deno.Command("sh", {
    args: ["-c", `yes | "${Deno.execPath()}" run -A "${CLI}" stdin -d "${s.url}" "${q0}"`],
    stdout: "null",
    stderr: "piped",
  }).output();
  assertEquals([yes.code, dec.decode(yes.stderr)], [0, ""], "yes | circuit stdin");
  assert(performance.now() - t0 < 20_000, "and it ended");
  // A second writer gets the server's reason whatever the size of its input.
  const q = `${s.path}/cat`;
  await mkprocOk(s, q, { Path: "/bin/sh", Args: ["-c", "read x; sleep 100"] });
  await using client = await connect(s.url);
  const holder = client.walk(q).proc().stdin.getWriter();
  await holder.write(enc.encode("x"));
  await waitFor(
    async () => {
      const r = await cli(["stdin", "-d", s.url, q], { stdin: enc.encode("y") });
      return r.code === 1 && /already taken/.test(r.stderr);
    },
    "a small second stdin to be refused",
    20_000,
  );
  assertOneLineError(
    await cli(["stdin", "-d", s.url, q], { stdin: new Uint8Array(1_000_000) }),
    /stdin is already taken/,
  );
  await holder.close();
  await ok(["scrub", "-d", s.url, q]);
});

Deno.test("Phase is stopped after STOP and continued after CONT", async () => {
  await using s = await Server.start();
  const p = `${s.path}/nap`;
  await mkprocOk(s, p, { Path: "/bin/sleep", Args: ["100"] });
  await ok(["signal", "-d", s.url, "STOP", p]);
  await waitFor(
    async () => parseState(await ok(["peek", "-d", s.url, p])).Phase === "stopped",
    "phase stopped",
    20_000,
  );
  await ok(["signal", "-d", s.url, "cont", p]);
  await waitFor(
    async () => parseState(await ok(["peek", "-d", s.url, p])).Phase === "continued",
    "phase continued",
    20_000,
  );
  await ok(["signal", "-d", s.url, "TERM", p]);
  assertEquals(parseState(await ok(["wait", "-d", s.url, p])).Phase, "signaled");
  // Stopped and resumed from outside circuit: the stop a peek saw counts too.
  const q = `${s.path}/nap2`;
  await mkprocOk(s, q, { Path: "/bin/sleep", Args: ["100"] });
  const pid = Number(parseState(await ok(["peek", "-d", s.url, q])).Pid);
  Deno.kill(pid, "SIGSTOP");
  await waitFor(
    async () => parseState(await ok(["peek", "-d", s.url, q])).Phase === "stopped",
    "phase stopped by an outside SIGSTOP",
    20_000,
  );
  Deno.kill(pid, "SIGCONT");
  await waitFor(
    async () => parseState(await ok(["peek", "-d", s.url, q])).Phase === "continued",
    "phase continued by an outside SIGCONT",
    20_000,
  );
  // A stop signal the process ignores never stops it: still running, never continued.
  const r = `${s.path}/stubborn`;
  await mkprocOk(s, r, { Path: "/bin/sh", Args: ["-c", "trap '' TSTP; exec sleep 100"] });
  const rpid = Number(parseState(await ok(["peek", "-d", s.url, r])).Pid);
  // Only once the trap is set (SigIgn has SIGTSTP, 20) may the signal go.
  await waitFor(
    async () => {
      const status = await Deno.readTextFile(`/proc/${rpid}/status`).catch(() => "");
      const ign = /SigIgn:\s*([0-9a-f]+)/.exec(status)?.[1];
      return ign !== undefined && (BigInt(`0x${ign}`) & (1n << 19n)) !== 0n;
    },
    "the TSTP trap",
    20_000,
  );
  await ok(["signal", "-d", s.url, "TSTP", r]);
  await ok(["signal", "-d", s.url, "CONT", r]);
  assertEquals(parseState(await ok(["peek", "-d", s.url, r])).Phase, "running");
  await ok(["scrub", "-d", s.url, q]);
  await ok(["scrub", "-d", s.url, r]);
});

Deno.test("a stdin upload that breaks fails its call: no truncated input is taken as whole", async () => {
  await using s = await Server.start();
  await using client = await connect(s.url);
  const p = `${s.path}/cat`;
  const cat = await client.walk(p).makeProc({ Path: "/bin/cat" });
  const out = text(cat.stdout);
  const w = cat.stdin.getWriter();
  await w.write(enc.encode("part"));
  const bad = await w.write("not bytes" as unknown as Uint8Array).then(() => null, (e) => e);
  assert(bad instanceof CircuitError && bad.code === "bad request", `got ${bad}`);
  assertEquals(await out, "part", "the process got what came before, then EOF");
  const stdinOutcome = async () => {
    const recs = (await Deno.readTextFile(`${s.varDir}/ops.log`)).trim().split("\n")
      .map((l) => JSON.parse(l)).filter((r) => r.path === p && r.op === "stdin");
    return recs[0]?.outcome as string | undefined;
  };
  await waitFor(async () => (await stdinOutcome()) !== undefined, "the stdin call's record");
  assert((await stdinOutcome())!.startsWith("error"), `stdin outcome: ${await stdinOutcome()}`);
});

// 15. Scrub: true keeps what the caller asked for (issue 23, part 2).

Deno.test("Scrub true: the Go tutorial's pattern loses nothing for fast commands, 20 times in a row", async () => {
  await using s = await Server.start();
  await using client = await connect(s.url);
  for (let i = 0; i < 20; i++) {
    // Write stdin, close it, read all stdout, wait; a non-zero exit is seen.
    const sh = await client.walk(`${s.path}/sh${i}`).makeProc({
      Path: "/bin/sh",
      Args: ["-c", "cat; exit 3"],
      Scrub: true,
    });
    const w = sh.stdin.getWriter();
    await w.write(enc.encode(`in ${i}\n`));
    await w.close();
    assertEquals(await new Response(sh.stdout).text(), `in ${i}\n`, `run ${i}`);
    const st = await sh.wait();
    assertEquals([st.Phase, st.ExitCode, st.Exit], ["exited", 3, { Body: "exit status 3" }]);
    assertEquals(exitStatus(st), 3);
    // Output opened right after makeProc of a command that exits at once.
    const echo = await client.walk(`${s.path}/echo${i}`).makeProc({
      Path: "/bin/echo",
      Args: [`hi ${i}`],
      Scrub: true,
    });
    assertEquals(await new Response(echo.stdout).text(), `hi ${i}\n`, `echo ${i}`);
    assertEquals((await echo.wait()).ExitCode, 0);
  }
  // Read after the process is long gone, in any order: still there.
  const late = await client.walk(`${s.path}/late`).makeProc({
    Path: "/bin/sh",
    Args: ["-c", "echo out; echo err >&2; exit 5"],
    Scrub: true,
  });
  await waitFor(async () => (await client.walk(s.path).ls()).length === 0, "it to leave ls");
  assertEquals(await client.walk(`${s.path}/late`).peek(), null, "peek shows the namespace");
  assertEquals((await late.wait()).ExitCode, 5);
  assertEquals(await new Response(late.stderr).text(), "err\n");
  assertEquals(await new Response(late.stdout).text(), "out\n");
  // A new element at the path replaces the exited one.
  const again = await client.walk(`${s.path}/late`).makeProc({ Path: "/bin/sleep", Args: ["60"] });
  assertEquals((await again.peek() as { Phase: string }).Phase, "running");
  await again.scrub();
  const gone = await late.wait().then(() => null, (e) => e);
  assert(gone instanceof CircuitError && gone.code === "not found", `${gone}`);
});

Deno.test("mkproc --scrub, then stdout, then wait -x works for a fast job", async () => {
  await using s = await Server.start();
  for (let i = 0; i < 3; i++) {
    const p = `${s.path}/fast${i}`;
    await mkprocOk(s, p, { Path: "/bin/sh", Args: ["-c", `echo fast ${i}; exit 3`] }, ["--scrub"]);
    assertEquals(await ok(["stdout", "-d", s.url, p]), `fast ${i}\n`);
    const w = await cli(["wait", "-x", "-d", s.url, p]);
    assertEquals([w.code, parseState(w.stdout).ExitCode, w.stderr], [3, 3, ""]);
  }
  assertEquals(await ok(["ls", "-d", s.url, "/..."]), `${s.path}\n`);
});

// 16. Exit codes scripts can use (issue 23, part 3).

Deno.test("wait -x and waitall -x exit with the process's status; without -x they exit 0", async () => {
  await using s = await Server.start();
  const three = `${s.path}/three`, killed = `${s.path}/killed`, zero = `${s.path}/zero`;
  await mkprocOk(s, three, { Path: "/bin/sh", Args: ["-c", "exit 3"] });
  await mkprocOk(s, killed, { Path: "/bin/sleep", Args: ["60"] });
  await mkprocOk(s, zero, { Path: "/bin/true" });
  await ok(["signal", "-d", s.url, "KILL", killed]);
  const plain = await cli(["wait", "-d", s.url, three]);
  assertEquals([plain.code, parseState(plain.stdout).ExitCode], [0, 3], "compatible default");
  assertEquals((await cli(["wait", "-x", "-d", s.url, three])).code, 3);
  assertEquals((await cli(["wait", "--exit", "-d", s.url, killed])).code, 128 + 9);
  assertEquals((await cli(["wait", "-x", "-d", s.url, zero])).code, 0);
  const all = `${three}\n${killed}\n${zero}\n`;
  assertEquals((await cli(["waitall", "-d", s.url], { stdin: all })).code, 0);
  const x = await cli(["waitall", "-x", "-d", s.url], { stdin: all });
  assertEquals([x.code, x.stdout, x.stderr], [137, "", ""]);
  assertEquals((await cli(["waitall", "-x", "-d", s.url], { stdin: `${zero}\n` })).code, 0);
});
