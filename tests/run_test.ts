/**
 * `circuit run` and the library's `run` against three real servers: prefixed and complete
 * output, the highest exit status, an unreachable server, the time limit, Ctrl-C, stdin
 * to all, JSON results, and nothing left behind.
 */

import { connect, run, type RunLine, runStatus } from "../mod.ts";
import { assert, assertEquals, cli, Cluster, type Server, TempDir, waitFor } from "./_harness.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** Three servers that list each other. */
async function three(): Promise<Cluster> {
  const c = await new Cluster().chain(3);
  return await c.listed(15_000);
}

/** Whether nothing but the servers is left in the namespace. */
async function clean(s: Server, servers: Server[]): Promise<boolean> {
  const r = await cli(["ls", "-d", s.url, "/..."]);
  return r.stdout === servers.map((x) => `${x.path}\n`).sort().join("");
}

Deno.test("run: every line prefixed and complete, exit status the highest, one line per failed server", async () => {
  await using c = await three();
  using dir = new TempDir();
  const [a] = c.servers;
  // Each server's process exits with the code in a file named after the server's pid.
  const codes = [0, 3, 7];
  c.servers.forEach((s, i) => Deno.writeTextFileSync(`${dir.path}/${s.child.pid}`, `${codes[i]}`));
  const script = `i=0; while [ $i -lt 300 ]; do echo "line $i"; i=$((i+1)); done; ` +
    `echo oops >&2; exit $(cat ${dir.path}/$PPID)`;
  const r = await cli(["run", "-d", a.url, "--", "/bin/sh", "-c", script]);
  assertEquals(r.code, 7, r.stderr);
  for (const s of c.servers) {
    const mine = r.stdout.split("\n").filter((l) => l.startsWith(`${s.path}: `));
    assertEquals(mine, [...Array(300).keys()].map((i) => `${s.path}: line ${i}`), s.path);
  }
  assertEquals(r.stdout.split("\n").length, 3 * 300 + 1, "no other lines");
  const err = r.stderr.trimEnd().split("\n");
  for (const s of c.servers) assert(err.includes(`${s.path}: oops`), r.stderr);
  const summary = err.filter((l) => l.startsWith("circuit run: ")).sort();
  assertEquals(
    summary,
    [
      `circuit run: ${c.servers[1].path}: exit status 3`,
      `circuit run: ${c.servers[2].path}: exit status 7`,
    ].sort(),
  );
  assert(await clean(a, c.servers), "run scrubbed what it started");

  const ok = await cli(["run", "-d", a.url, "/bin/true"]);
  assertEquals([ok.code, ok.stdout, ok.stderr], [0, "", ""]);
  const one = await cli(["run", "-d", a.url, "--no-prefix", c.servers[1].path, "/bin/echo", "hi"]);
  assertEquals([one.code, one.stdout], [0, "hi\n"], "one server selected, no prefix");
});

Deno.test("run: a server killed right before counts as failed and says why; the others run", async () => {
  await using c = await three();
  const [a, b, dead] = c.servers;
  dead.kill("SIGKILL");
  await dead.status;
  const r = await cli([
    "run",
    "-d",
    a.url,
    a.path,
    b.path,
    dead.path,
    "--",
    "/bin/echo",
    "up",
  ]);
  assertEquals(r.code, 255, r.stderr);
  assertEquals(r.stdout.split("\n").sort(), ["", `${a.path}: up`, `${b.path}: up`].sort());
  const lines = r.stderr.trimEnd().split("\n");
  assertEquals(lines.length, 1, r.stderr);
  assert(lines[0].startsWith(`circuit run: ${dead.path}: `) && lines[0].length > 40, lines[0]);
});

Deno.test("run --timeout stops what still runs (TERM, then KILL) and scrubs it", async () => {
  await using c = await three();
  const [a] = c.servers;
  const t = performance.now();
  const r = await cli(["run", "-d", a.url, "--timeout", "1s", "--", "/bin/sleep", "60"]);
  const ms = performance.now() - t;
  assertEquals(r.code, 143, r.stderr);
  assert(ms < 8000, `took ${ms.toFixed(0)} ms`);
  for (const s of c.servers) {
    assert(r.stderr.includes(`circuit run: ${s.path}: signal SIGTERM (exit status 143)`), r.stderr);
  }
  const stubborn = await cli([
    "run",
    "-d",
    a.url,
    "--timeout",
    "500ms",
    "--",
    "/bin/sh",
    "-c",
    'trap "" TERM; sleep 60',
  ]);
  assertEquals(stubborn.code, 137, stubborn.stderr);
  await waitFor(() => clean(a, c.servers), "the namespace to be clean");
});

Deno.test("run: Ctrl-C stops the processes and scrubs them", async () => {
  await using c = await three();
  const [a] = c.servers;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "run", "-d", a.url, "--", "/bin/sh", "-c", "echo started; sleep 60"],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (seen.split("started").length < 4) seen += (await out.read()).value ?? "";
  child.kill("SIGINT");
  const [status, rest, err] = await Promise.all([
    child.status,
    (async () => {
      for (let r = await out.read(); !r.done; r = await out.read()) seen += r.value;
    })(),
    new Response(child.stderr).text(),
  ]);
  void rest;
  assertEquals(status.code, 143, err);
  assert(err.includes("the run interrupted"), err);
  await waitFor(() => clean(a, c.servers), "the namespace to be clean");
});

Deno.test("run --stdin sends our stdin to every process; --json prints one result per server", async () => {
  await using c = await three();
  const [a] = c.servers;
  const r = await cli(["run", "-d", a.url, "--stdin", "--", "/bin/cat"], { stdin: "one\ntwo" });
  assertEquals(r.code, 0, r.stderr);
  const want = c.servers.flatMap((s) => [`${s.path}: one`, `${s.path}: two`]).sort();
  assertEquals(r.stdout.trimEnd().split("\n").sort(), want);

  const j = await cli([
    "run",
    "-d",
    a.url,
    "--json",
    "--capture",
    "--",
    "/bin/sh",
    "-c",
    "echo o; exit 4",
  ]);
  assertEquals(j.code, 4);
  const results = j.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
  assertEquals(results.map((x) => x.server), c.servers.map((s) => s.path).sort());
  for (const x of results) {
    assertEquals(
      [x.exit, x.signal, x.status, x.error, x.stdout, x.stderr],
      [4, null, 4, null, "o\n", ""],
    );
    assert(x.path.startsWith(`${x.server}/run/`), x.path);
  }
});

Deno.test("library run: lines as they arrive, per-server results, parallel bound", async () => {
  await using c = await three();
  await using client = await connect(c.servers[0].url);
  const job = run(client, "/", {
    Path: "/bin/sh",
    Args: ["-c", "echo a; echo b >&2; kill -TERM $$"],
  }, { parallel: 1, capture: true });
  const lines: RunLine[] = [];
  for await (const l of job) lines.push(l);
  const results = await job.results;
  assertEquals(results.length, 3);
  assertEquals(runStatus(results), 143);
  for (const r of results) {
    assertEquals([r.exit, r.signal, r.status, r.stdout, r.stderr], [
      null,
      "SIGTERM",
      143,
      "a\n",
      "b\n",
    ]);
    assertEquals(
      lines.filter((l) => l.server === r.server).map((l) => `${l.stream} ${l.text}`).sort(),
      ["stderr b", "stdout a"],
    );
  }
});

Deno.test("library client.run() is run() on that client", async () => {
  await using c = await three();
  await using client = await connect(c.servers[0].url);
  const paths = [c.servers[1].path, c.servers[2].path];
  const results = await client.run(paths, { Path: "/bin/sh", Args: ["-c", "exit 4"] }).results;
  assertEquals(results.map((r) => [r.server, r.status]).sort(), paths.map((p) => [p, 4]).sort());
});
