/**
 * The benchmark harness: `deno task bench [-- --quick]`.
 *
 * Starts real `circuit start` subprocesses and measures
 * 1. cold CLI `circuit ls /` wall time (hyperfine when installed), beside `deno run` of an
 *    empty script and of one that only loads msgpackr and node:crypto,
 * 2. library `peek` round trips, dialed and forwarded, keyed and unkeyed, pinned and not,
 * 3. `ls /...` over 20 servers and their join convergence,
 * 4. idle server RSS and CPU, beside idle Deno processes that do only the membership packets,
 * 5. requests/s, frames/s and MB/s through one connection,
 * 6. process start→exit of `/bin/true` through the library, and starts/s (beside the local
 *    spawn floor and ssh),
 * 7. stdout streaming through the library and `circuit stdout` (beside ssh),
 * 8. channel ping-pong and messages/s (beside Redis and etcd, and the floor of the ping-pong's
 *    8 one-way trips over plain TCP),
 * 9. DNS lookups (beside nsd),
 * 10. membership in network namespaces: join convergence, failure detection, false leaves
 *    under load and loss, idle cost (beside serf; needs root).
 *
 * `--quick` shrinks every section; `--only 6,8` runs only the sections named; anything
 * else is refused with one line on stderr and exit 1.
 * Peers (sshd, redis-server, etcd, nsd) run privately on loopback ports in temp directories
 * (serf in section 10's namespaces) and are stopped with the servers; one that cannot be set
 * up is recorded as skipped.
 *
 * Writes `bench/out/report.json` and `bench/out/report.md` and prints the Markdown.
 * Every subprocess is stopped with SIGTERM before it exits, also on failure or Ctrl-C.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { connect, generateKey, parseKey, readKeyFile } from "../mod.ts";
import {
  canRun,
  CLI,
  Cluster,
  denoArgv,
  keygen,
  ROOT,
  run,
  spawnService,
  stopAll,
  waitConverged,
} from "./_cluster.ts";
import { type Endpoint, listenEndpoint } from "./_endpoint.ts";
import type { ClientJob, ClientResult } from "./_peek_client.ts";
import { type Figure, figure, type FigureInput, type Report, writeReport } from "./_report.ts";
import { summarize, type Summary } from "./_stats.ts";
import { channels, S8 } from "./_chans.ts";
import { dnsBench, S_DNS } from "./_dns.ts";
import { membershipBench, S_MEMBERSHIP } from "./_membership.ts";
import type { SectionContext } from "./_context.ts";
import { removeScratch } from "./_peers.ts";
import { procStart, S6, S7, stdoutStream } from "./_procs.ts";
import { PEER_KEEPALIVE } from "../server/mesh.ts";
import { DEFAULT_MEMBERSHIP_CONFIG } from "../net/membership/mod.ts";
import {
  dialEndpoint,
  download,
  type EndpointAddr,
  pipelined,
  rawDownload,
} from "./_throughput.ts";

const USAGE = "usage: deno task bench [--quick] [--only N[,N...]] (sections 1-10)";

/**
 * The command line: `--quick`, `--only 1,6` (or `--only=1,6`), `--help`. Anything else
 * is one line on stderr and exit 1, before any section starts.
 *
 * @param args the arguments
 * @returns whether to shrink every section, and the sections to run (null: all)
 */
function options(args: string[]): { quick: boolean; only: Set<number> | null } {
  const fail = (why: string): never => {
    console.error(`bench: ${why}; ${USAGE}`);
    Deno.exit(1);
  };
  let values: { quick?: boolean; only?: string; help?: boolean } = {};
  try {
    values = parseArgs({
      // `deno task bench -- --quick` passes the `--` on.
      args: args[0] === "--" ? args.slice(1) : args,
      options: {
        quick: { type: "boolean" },
        only: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    fail((err as Error).message.split("\n")[0]);
  }
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  if (values.only === undefined) return { quick: values.quick === true, only: null };
  const nums = values.only.split(",").map((x) => x.trim());
  if (nums.some((x) => !/^([1-9]|10)$/.test(x))) {
    fail(`--only wants section numbers 1-10, got "${values.only}"`);
  }
  return { quick: values.quick === true, only: new Set(nums.map(Number)) };
}

const { quick: QUICK, only: ONLY } = options(Deno.args);
const MiB = 1024 * 1024;

/** Iteration counts; `--quick` runs a smaller subset. */
const P = QUICK
  ? {
    cliRuns: 10,
    cliWarmup: 2,
    peekN: 1000,
    peekWarmup: 2000,
    bigCluster: 20,
    lsN: 20,
    idleS: 5,
    batches: 8,
    batchSize: 1000,
    streamBytes: 128 * MiB,
    crossBytes: 128 * MiB,
  }
  : {
    cliRuns: 30,
    cliWarmup: 3,
    peekN: 5000,
    peekWarmup: 3000,
    bigCluster: 20,
    lsN: 50,
    idleS: 30,
    batches: 32,
    batchSize: 1000,
    streamBytes: 1024 * MiB,
    crossBytes: 512 * MiB,
  };

/** Section titles. */
const S1 = "1. Cold CLI `circuit ls /` (1-server cluster)";
const S2 = "2. Library `peek` round trip";
const S3 = `3. \`ls /...\` over ${P.bigCluster} servers`;
const S4 = "4. Idle server (one of a 3-server cluster)";
const S5 = "5. Throughput through one connection";

const OUT = `${ROOT}bench/out`;
const figures: Figure[] = [];
const notes: string[] = [];
const env: Record<string, string | number | boolean> = {};

function add(f: FigureInput): void {
  figures.push(figure(f));
}

function progress(msg: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`[bench] ${msg}\n`));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Run one measurement; a failure becomes a note and a null figure, not an abort.
 *
 * @param section the section title
 * @param fn the measurement
 */
async function section(section: string, fn: () => Promise<void>): Promise<void> {
  const num = Number(/^(\d+)\./.exec(section)?.[1]);
  if (ONLY && !ONLY.has(num)) return;
  progress(section);
  const load = (await Deno.readTextFile("/proc/loadavg").catch(() => "?")).split(" ")[0];
  env[`load average at start of section ${num}`] = load;
  const t = performance.now();
  try {
    await fn();
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    progress(`${section} failed: ${msg}`);
    add({ section, name: "(measurement failed)", value: null, unit: "", notes: msg });
  } finally {
    await stopAll();
    removeScratch();
  }
  progress(`${section}: ${((performance.now() - t) / 1000).toFixed(1)} s`);
}

// ---------------------------------------------------------------------------------------
// Environment

async function environment(pinnable: boolean, hyperfine: string | null): Promise<void> {
  env.deno = Deno.version.deno;
  env.v8 = Deno.version.v8;
  env.kernel = Deno.osRelease();
  try {
    const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
    env.cpu = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? "?";
    const mem = await Deno.readTextFile("/proc/meminfo");
    env.memory = `${Math.round(Number(/MemTotal:\s*(\d+)/.exec(mem)?.[1] ?? 0) / 1024)} MiB`;
  } catch { /* not Linux */ }
  env.cores = navigator.hardwareConcurrency;
  const load = (await Deno.readTextFile("/proc/loadavg").catch(() => "?")).split(" ");
  env["load average at start"] = load.slice(0, 3).join(" ");
  if (Number(load[0]) > 0.5) {
    notes.push(
      `Other processes were busy when the run started (1-minute load average ${load[0]} on ` +
        `${navigator.hardwareConcurrency} cores): latency tails and CLI times are noisier.`,
    );
  }
  env.taskset = pinnable ? "yes (core 0)" : "no";
  env.hyperfine = hyperfine ?? "not installed (spawn loop instead)";
  const head = await run("git", ["-C", ROOT, "rev-parse", "--short", "HEAD"]).catch(() => null);
  const dirty = await run("git", ["-C", ROOT, "status", "--porcelain"]).catch(() => null);
  env.commit = head?.code === 0
    ? head.stdout.trim() + (dirty?.stdout.trim() ? " (work tree modified)" : "")
    : "?";
}

// ---------------------------------------------------------------------------------------
// 1. Cold CLI

interface Timed {
  name: string;
  argv: string[];
  /** Wall times in ms. */
  ms: Summary;
}

async function hyperfineRuns(cmds: { name: string; argv: string[] }[], tmp: string) {
  const json = `${tmp}/hyperfine.json`;
  const args = ["-N", "--warmup", String(P.cliWarmup), "--runs", String(P.cliRuns)];
  args.push("--style", "none", "--export-json", json);
  for (const c of cmds) args.push("-n", c.name, c.argv.join(" "));
  const r = await run("hyperfine", args);
  if (r.code !== 0) throw new Error(`hyperfine failed: ${r.stderr.trim().split("\n").pop()}`);
  const data = JSON.parse(await Deno.readTextFile(json)) as {
    results: { command: string; times: number[] }[];
  };
  return data.results.map((res, i): Timed => ({
    name: cmds[i].name,
    argv: cmds[i].argv,
    ms: summarize(res.times.map((s) => s * 1000)),
  }));
}

async function spawnLoopRuns(cmds: { name: string; argv: string[] }[]) {
  const out: Timed[] = [];
  for (const c of cmds) {
    const times: number[] = [];
    for (let i = 0; i < P.cliWarmup + P.cliRuns; i++) {
      const t = performance.now();
      const o = await new Deno.Command(c.argv[0], {
        args: c.argv.slice(1),
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).output();
      const ms = performance.now() - t;
      if (o.code !== 0) throw new Error(`${c.name} exited ${o.code}`);
      if (i >= P.cliWarmup) times.push(ms);
    }
    out.push({ name: c.name, argv: c.argv, ms: summarize(times) });
  }
  return out;
}

async function coldCli(tmp: string, keyFile: string, hyperfine: boolean): Promise<void> {
  const S = S1;
  await using plain = new Cluster(`${tmp}/cli-plain`);
  await using keyed = new Cluster(`${tmp}/cli-keyed`, keyFile);
  const [p, k] = await Promise.all([plain.add(), keyed.add()]);
  const empty = `${tmp}/empty.ts`;
  await Deno.writeTextFile(empty, "");
  const importOnly = `${tmp}/import_mod.ts`;
  await Deno.writeTextFile(importOnly, `import ${JSON.stringify(`${ROOT}mod.ts`)};\n`);
  // The libraries a keyed CLI must load (msgpackr for frames, node:crypto for the MAC and
  // cipher), each used once and nothing else: the floor under a keyed cold command.
  const libs = `${tmp}/keyed_libs.ts`;
  await Deno.writeTextFile(
    libs,
    `import { Packr } from "msgpackr/pack";\nimport { createHmac } from "node:crypto";\n` +
      `const p = new Packr({ useRecords: false });\np.unpack(p.pack({ a: 1 }));\n` +
      `createHmac("sha256", "k").update("x").digest();\n`,
  );
  const deno = Deno.execPath();
  const cmds: { name: string; argv: string[]; goal?: boolean; expect?: string; note: string }[] = [
    {
      name: "floor: deno run -A empty.ts",
      argv: [deno, "run", "-A", empty],
      note: "Deno start-up alone; no CLI can be cold-started faster with `deno run`",
    },
    {
      name: "import mod.ts only (no dial)",
      argv: [deno, "run", "-A", "--config", `${ROOT}deno.json`, importOnly],
      note: "module loading of the client library (msgpackr and its own modules; node:crypto " +
        "loads only at the first keyed dial) without running",
    },
    {
      name: "floor: deno run importing msgpackr and node:crypto",
      argv: [deno, "run", "-A", "--config", `${ROOT}deno.json`, libs],
      note: "the two libraries every keyed command loads (frames; MAC and cipher), each used " +
        "once, no dial: no keyed command can start faster with `deno run`",
    },
    {
      name: "circuit help (no network)",
      argv: [deno, "run", "-A", CLI, "help"],
      note: "loads cli.ts and the command table, dials nothing",
    },
    {
      name: "circuit ls -d URL / (unkeyed)",
      argv: [deno, "run", "-A", CLI, "ls", "-d", p.url, "/"],
      goal: true,
      expect: `/X${p.id}`,
      note: "loopback server without a key; `deno run -A cli.ts`",
    },
    {
      name: "circuit ls -d URL --hmac KEY / (keyed)",
      argv: [deno, "run", "-A", CLI, "ls", "-d", k.url, "--hmac", keyFile, "/"],
      goal: true,
      expect: `/X${k.id}`,
      note: "production path: key file read, keyed handshake; `deno run -A cli.ts`",
    },
  ];
  const bin = `${ROOT}dist/circuit`;
  const hasBin = await Deno.stat(bin).then((s) => s.isFile, () => false);
  if (hasBin) {
    cmds.push({
      name: "dist/circuit ls -d URL --hmac KEY / (compiled)",
      argv: [bin, "ls", "-d", k.url, "--hmac", keyFile, "/"],
      goal: true,
      expect: `/X${k.id}`,
      note: "`deno task compile` binary",
    });
  } else {
    notes.push(
      "No dist/circuit: the compiled binary was not measured. `deno compile` needs to download " +
        "denort from dl.deno.land, which this machine cannot reach (set DENORT_BIN to a local " +
        "denort to compile offline).",
    );
  }
  const sshd = await Deno.stat("/usr/sbin/sshd").then(() => true, () => false);
  if (
    sshd &&
    await canRun("ssh", ["-o", "BatchMode=yes", "-o", "ConnectTimeout=2", "localhost", "true"])
  ) {
    cmds.push({
      name: "peer: ssh localhost true",
      argv: ["ssh", "-o", "BatchMode=yes", "localhost", "true"],
      note: "OpenSSH round trip with key login, for scale",
    });
  } else {
    notes.push(
      "Peer `ssh localhost true` skipped: " +
        (sshd ? "key login to localhost does not work" : "openssh-server is not installed") +
        " (this section uses the system sshd on port 22; sections 6 and 7 start a private one).",
    );
  }
  // Each command must work before it is timed.
  for (const c of cmds) {
    const r = await run(c.argv[0], c.argv.slice(1));
    if (r.code !== 0 || (c.expect && !r.stdout.includes(c.expect))) {
      throw new Error(`${c.name} does not work: exit ${r.code} ${r.stderr.trim().split("\n")[0]}`);
    }
  }
  const timed = hyperfine ? await hyperfineRuns(cmds, tmp) : await spawnLoopRuns(cmds);
  const how = hyperfine
    ? `hyperfine -N --warmup ${P.cliWarmup} --runs ${P.cliRuns}`
    : `${P.cliRuns} spawns after ${P.cliWarmup} warm-up, performance.now()`;
  for (const [i, t] of timed.entries()) {
    const c = cmds[i];
    const goal = c.goal ? { op: "<=" as const, value: 60 } : undefined;
    add({
      section: S,
      name: `${t.name}: mean`,
      value: t.ms.mean,
      unit: "ms",
      goal,
      notes: `${c.note}; ${how}`,
    });
    add({ section: S, name: `${t.name}: p50`, value: t.ms.p50, unit: "ms", goal });
    add({
      section: S,
      name: `${t.name}: p99`,
      value: t.ms.p99,
      unit: "ms",
      notes: `min ${t.ms.min.toFixed(1)} ms`,
    });
  }
}

// ---------------------------------------------------------------------------------------
// 2. Peek round trips

async function clientJob(job: ClientJob, pin?: string): Promise<ClientResult> {
  const argv = denoArgv(`${ROOT}bench/_peek_client.ts`, [JSON.stringify(job)], pin);
  const r = await run(argv.cmd, argv.args);
  if (r.code !== 0) throw new Error(`peek client failed: ${r.stderr.trim().split("\n").pop()}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as ClientResult;
}

async function peeks(tmp: string, keyFile: string, pinnable: boolean): Promise<void> {
  const S = S2;
  const modes: { pinned: boolean; pin?: string }[] = pinnable
    ? [{ pinned: true, pin: "0" }, { pinned: false }]
    : [{ pinned: false }];
  if (!pinnable) notes.push("taskset is not usable here: peeks were measured unpinned only.");
  const n = P.peekN, warmup = P.peekWarmup;
  for (const m of modes) {
    const tag = m.pinned ? "pinned (client+servers on core 0)" : "unpinned";
    await using keyed = new Cluster(`${tmp}/peek-keyed-${m.pinned}`, keyFile, m.pin);
    await using plain = new Cluster(`${tmp}/peek-plain-${m.pinned}`, undefined, m.pin);
    const a = await keyed.add();
    const b = await keyed.add(a.url);
    const u = await plain.add();
    await waitConverged([a.url, b.url], 2, keyFile);
    const echo = await spawnService(denoArgv(`${ROOT}bench/_echo_server.ts`, [], m.pin));
    const info = JSON.parse(echo.line) as { rawEchoPort: number };
    const jobs: { name: string; job: ClientJob; goal: boolean; note: string }[] = [
      {
        name: `keyed, dialed server, ${tag}`,
        job: { mode: "peek", url: a.url, keyFile, path: `/X${a.id}`, n, warmup },
        goal: true,
        note: "production path; original Go client: 102 µs p50 on this box",
      },
      {
        name: `keyed, forwarded server, ${tag}`,
        job: { mode: "peek", url: a.url, keyFile, path: `/X${b.id}`, n, warmup },
        goal: false,
        note: "peek of the second server through the first (two hops)",
      },
      {
        name: `unkeyed, dialed server, ${tag}`,
        job: { mode: "peek", url: u.url, path: `/X${u.id}`, n, warmup },
        goal: true,
        note: "loopback, plain frames",
      },
      {
        name: `keyed, dialed, timeoutMs 0, ${tag}`,
        job: { mode: "peek", url: a.url, keyFile, path: `/X${a.id}`, n, warmup, timeoutMs: 0 },
        goal: false,
        note:
          "same as the first without the per-call AbortSignal.timeout the default 10 s limit makes",
      },
      {
        name: `floor: raw Deno TCP echo 100 B, ${tag}`,
        job: { mode: "raw", host: "127.0.0.1", port: info.rawEchoPort, n, warmup, size: 100 },
        goal: false,
        note: "Deno socket round trip with no framing, crypto or msgpack",
      },
    ];
    for (const j of jobs) {
      const r = await clientJob(j.job, m.pin);
      const goal = j.goal ? { op: "<=" as const, value: 100 } : undefined;
      add({
        section: S,
        name: `${j.name}: p50`,
        value: r.us.p50,
        unit: "µs",
        goal,
        notes: `${j.note}; ${r.us.n} sequential after ${warmup} warm-up (steady state: V8 ` +
          `optimizes the call path after a few thousand calls; a long-lived client runs there); ` +
          `client CPUs ${r.cpus}`,
      });
      add({
        section: S,
        name: `${j.name}: p99`,
        value: r.us.p99,
        unit: "µs",
        notes: `mean ${r.us.mean.toFixed(1)} µs, max ${r.us.max.toFixed(0)} µs`,
      });
    }
    await echo.stop();
  }
}

// ---------------------------------------------------------------------------------------
// 3. ls over 20 servers

async function bigCluster(tmp: string, keyFile: string): Promise<void> {
  const S = S3;
  const N = P.bigCluster;
  await using c = new Cluster(`${tmp}/big`, keyFile);
  const seed = await c.add();
  const t0 = performance.now();
  await c.star(N);
  const tUrls = performance.now() - t0;
  const conv = await waitConverged(c.servers.map((s) => s.url), N, keyFile, 60_000);
  const tConv = performance.now() - t0;
  add({
    section: S,
    name: `join convergence of ${N} servers`,
    value: tConv,
    unit: "ms",
    notes: `star: ${N - 1} servers started in parallel with -j the first (keyed); from spawning ` +
      `until every server lists ${N} at /; all URLs printed after ${tUrls.toFixed(0)} ms ` +
      `(includes Deno start-up of ${N - 1} processes on ${navigator.hardwareConcurrency} cores), ` +
      `then ${conv.toFixed(0)} ms more`,
  });
  const key = await readKeyFile(keyFile);
  const client = await connect(seed.url, { key });
  try {
    const root = client.walk("/");
    let count = 0;
    for (let i = 0; i < 5; i++) count = (await root.ls({ recursive: true })).length;
    const times: number[] = [];
    for (let i = 0; i < P.lsN; i++) {
      const t = performance.now();
      await root.ls({ recursive: true });
      times.push(performance.now() - t);
    }
    const s = summarize(times);
    add({
      section: S,
      name: "recursive ls / from the library: p50",
      value: s.p50,
      unit: "ms",
      notes:
        `${s.n} sequential after 5 warm-up, ${count} entries, client in the bench process, unpinned`,
    });
    add({
      section: S,
      name: "recursive ls / from the library: p99",
      value: s.p99,
      unit: "ms",
      notes: `mean ${s.mean.toFixed(2)} ms, max ${s.max.toFixed(2)} ms`,
    });
  } finally {
    client.close();
  }
  // Idle cost grows with the mesh: every server keeps a connection to every other.
  await sleep(1000);
  const clk = await clockTicks();
  const idleS = Math.min(10, P.idleS);
  const pids = [c.servers[0].pid, c.servers[N - 1].pid];
  const before = await Promise.all(pids.map((pid) => sampleProc(pid)));
  await sleep(idleS * 1000);
  const after = await Promise.all(pids.map((pid) => sampleProc(pid)));
  const cpu = pids.map((_, i) =>
    (after[i].ticks - before[i].ticks) / clk / ((after[i].at - before[i].at) / 1000) * 100
  );
  add({
    section: S,
    name: `idle CPU of one server in the ${N}-server cluster`,
    value: Math.max(...cpu),
    unit: "%",
    notes: `over ${idleS} s, no client; seed ${cpu[0].toFixed(2)} %, a joiner ${
      cpu[1].toFixed(2)
    } %; RSS ${(after[1].rssKiB * 1024 / 1e6).toFixed(1)} MB; ${
      2 * (N - 1)
    } connections per server`,
  });
}

// ---------------------------------------------------------------------------------------
// 4. Idle RSS and CPU

interface ProcSample {
  rssKiB: number;
  ticks: number;
  at: number;
}

async function sampleProc(pid: number): Promise<ProcSample> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const at = performance.now();
  const rssKiB = Number(/VmRSS:\s*(\d+)/.exec(status)?.[1] ?? NaN);
  // Fields after the command name (which may hold spaces): state is field 3.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(rest[11]) + Number(rest[12]); // utime (14) + stime (15)
  return { rssKiB, ticks, at };
}

async function clockTicks(): Promise<number> {
  return Number((await run("getconf", ["CLK_TCK"]).catch(() => null))?.stdout.trim() || 100);
}

async function idle(tmp: string, keyFile: string): Promise<void> {
  const S = S4;
  const clk = await clockTicks();
  // The floor under an idle member: the same packets with nothing of circuit's own,
  // started first so it has warmed up at least as long as the servers.
  const ports = freeUdpPorts(3);
  const ring = await Promise.all(ports.map((port, i) =>
    spawnService(
      denoArgv(
        `${ROOT}bench/_idle_floor.ts`,
        [String(port), String(ports[(i + 1) % 3])],
        undefined,
        [
          "--config",
          `${ROOT}deno.json`,
        ],
      ),
    )
  ));
  await using c = new Cluster(`${tmp}/idle`, keyFile);
  await c.star(3);
  await waitConverged(c.servers.map((s) => s.url), 3, keyFile);
  // For scale: a Deno process that only listens, and one that also loads the transport.
  const floor = `${tmp}/idle_floor.ts`;
  await Deno.writeTextFile(
    floor,
    `Deno.listen({ hostname: "127.0.0.1", port: 0 });\nconsole.log("ready");\n` +
      `setInterval(() => {}, 1 << 30);\n`,
  );
  const floorNet = `${tmp}/idle_floor_net.ts`;
  await Deno.writeTextFile(
    floorNet,
    `import ${JSON.stringify(`${ROOT}net/conn.ts`)};\n` + await Deno.readTextFile(floor),
  );
  const floors = [
    { name: "floor: idle Deno listener", svc: await spawnService(denoArgv(floor, [])) },
    {
      name: "floor: idle Deno listener importing net/conn.ts",
      svc: await spawnService(denoArgv(floorNet, [], undefined, ["--config", `${ROOT}deno.json`])),
    },
  ];
  floors.push({ name: "floor: idle member doing only the membership packets", svc: ring[1] });
  const pids = [...c.servers.map((s) => s.pid), ...floors.map((f) => f.svc.pid)];
  await sleep(1000); // let start-up work and the convergence clients' connections settle
  const before = await Promise.all(pids.map((pid) => sampleProc(pid)));
  await sleep(P.idleS * 1000);
  const after = await Promise.all(pids.map((pid) => sampleProc(pid)));
  const per = pids.map((_, i) => {
    const cpu = (after[i].ticks - before[i].ticks) / clk / ((after[i].at - before[i].at) / 1000) *
      100;
    return { cpu, rss0: before[i].rssKiB * 1024 / 1e6, rss1: after[i].rssKiB * 1024 / 1e6 };
  });
  const i = 1; // a joiner, not the seed
  const all = per.slice(0, c.servers.length).map((p, k) =>
    `#${k}: ${p.rss1.toFixed(1)} MB, ${p.cpu.toFixed(2)} %`
  ).join("; ");
  add({
    section: S,
    name: "RSS at start of idle",
    value: per[i].rss0,
    unit: "MB",
    goal: { op: "<=", value: 50 },
    notes: "VmRSS, 10^6 bytes; keyed cluster, no client connected",
  });
  add({
    section: S,
    name: `RSS after ${P.idleS} s idle`,
    value: per[i].rss1,
    unit: "MB",
    goal: { op: "<=", value: 50 },
    notes: `all three: ${all}`,
  });
  add({
    section: S,
    name: `CPU over ${P.idleS} s idle`,
    value: per[i].cpu,
    unit: "%",
    goal: { op: "<=", value: 0.3 },
    notes: `utime+stime from /proc/PID/stat, ${clk} ticks/s (resolution ` +
      `${(100 / clk / P.idleS).toFixed(3)} %); one core = 100 %; each server holds 4 ` +
      `connections (2 dialed, 2 accepted), each pinging every ` +
      `${PEER_KEEPALIVE.pingIntervalMs! / 1000} s when quiet, and probes one member every ` +
      `${DEFAULT_MEMBERSHIP_CONFIG.probeIntervalMs} ms`,
  });
  for (const [k, f] of floors.entries()) {
    const p = per[c.servers.length + k];
    add({
      section: S,
      name: `${f.name}: RSS`,
      value: p.rss1,
      unit: "MB",
      notes: `for scale; CPU ${p.cpu.toFixed(2)} % over the same ${P.idleS} s`,
    });
  }
  const f = per[per.length - 1];
  add({
    section: S,
    name: "floor: idle member doing only the membership packets: CPU",
    value: f.cpu,
    unit: "%",
    notes: "one of three Deno processes in a ring (bench/_idle_floor.ts): msgpackr and " +
      "node:crypto loaded, a TCP listener, and every 500 ms a msgpack ping signed with one " +
      "SHA-256 call (less than an HMAC) to the " +
      "next with a 200 ms timeout the ack clears, each ping answered with a signed ack: " +
      "the packets an idle member of a 3-server cluster sends and receives at the default " +
      "probe interval (which issue 5's 3 s silent-failure goal sets), and nothing else",
  });
  await Promise.all(ring.map((r) => r.stop()));
}

/** Ports free for UDP on 127.0.0.1 right now (bound, noted and released). */
function freeUdpPorts(n: number): number[] {
  const socks = Array.from(
    { length: n },
    () => Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 }),
  );
  const ports = socks.map((u) => (u.addr as Deno.NetAddr).port);
  for (const u of socks) u.close();
  return ports;
}

// ---------------------------------------------------------------------------------------
// 5. Throughput through one connection

async function withEndpoint<T>(
  key: Uint8Array | undefined,
  config: { coalesceBytes: number } | undefined,
  fn: (addr: EndpointAddr, ep: Endpoint) => Promise<T>,
): Promise<T> {
  const ep = listenEndpoint(key, config);
  try {
    return await fn({ host: "127.0.0.1", port: ep.port, pid: ep.pid, id: ep.id }, ep);
  } finally {
    await ep.close();
  }
}

async function throughput(keyFile: string): Promise<void> {
  const S = S5;
  const key = parseKey(generateKey());
  const batches = P.batches, size = P.batchSize;
  const variants = [
    { name: "keyed", key, config: undefined },
    { name: "unkeyed", key: undefined, config: undefined },
    { name: "keyed, coalescing off (coalesceBytes 1)", key, config: { coalesceBytes: 1 } },
  ];
  for (const v of variants) {
    const r = await withEndpoint(v.key, v.config, async (addr) => {
      const conn = await dialEndpoint(addr, v.key, v.config);
      try {
        await pipelined(conn, 2, size, 100); // warm-up
        return await pipelined(conn, batches, size, 100);
      } finally {
        conn.close();
      }
    });
    const how = `in-process dial+accept; ${batches} batches of ${size} concurrent ` +
      `mux.request("echo", 100 B)`;
    add({
      section: S,
      name: `(a) 100 B requests, ${v.name}: requests/s`,
      value: r.requestsPerS,
      unit: "req/s",
      notes: how,
    });
    add({
      section: S,
      name: `(a) 100 B requests, ${v.name}: frames/s`,
      value: r.framesPerS,
      unit: "frames/s",
      notes: `both directions, client mux.stats: ${r.framesOut} out + ${r.framesIn} in`,
    });
    add({
      section: S,
      name: `(a) 100 B requests, ${v.name}: messages/frame`,
      value: r.requestsPerFrame,
      unit: "msg/frame",
      notes: `requests per frame written; replies per frame read: ${r.repliesPerFrame.toFixed(1)}`,
    });
  }
  for (const v of variants.slice(0, 2)) {
    const r = await withEndpoint(v.key, undefined, async (addr) => {
      const conn = await dialEndpoint(addr, v.key);
      try {
        await download(conn, 16 * MiB); // warm-up
        return await download(conn, P.streamBytes);
      } finally {
        conn.close();
      }
    });
    add({
      section: S,
      name: `(b) 64 KiB download stream, ${v.name}, in-process`,
      value: r.mbPerS,
      unit: "MB/s",
      notes: `${r.bytes / MiB} MiB in ${r.seconds.toFixed(2)} s, ${r.framesIn} frames; MB = 10^6 B`,
    });
  }
  const raw = await withEndpoint(
    undefined,
    undefined,
    (_addr, ep) => rawDownload("127.0.0.1", ep.rawSourcePort, P.streamBytes),
  );
  add({
    section: S,
    name: "(b) floor: raw Deno TCP, 64 KiB writes, in-process",
    value: raw.mbPerS,
    unit: "MB/s",
    notes: `${raw.bytes / MiB} MiB; no framing, crypto or msgpack`,
  });
  // Across processes: the endpoint in a subprocess, the client here.
  const fileKey = await readKeyFile(keyFile);
  for (
    const v of [{ name: "keyed", key: fileKey, args: [keyFile] }, {
      name: "unkeyed",
      key: undefined,
      args: [],
    }]
  ) {
    const svc = await spawnService(denoArgv(`${ROOT}bench/_echo_server.ts`, v.args));
    try {
      const info = JSON.parse(svc.line) as {
        port: number;
        pid: number;
        id: string;
        rawSourcePort: number;
      };
      const conn = await dialEndpoint({
        host: "127.0.0.1",
        port: info.port,
        pid: info.pid,
        id: info.id,
      }, v.key);
      try {
        await download(conn, 16 * MiB);
        const r = await download(conn, P.crossBytes);
        add({
          section: S,
          name: `(b) 64 KiB download stream, ${v.name}, across processes`,
          value: r.mbPerS,
          unit: "MB/s",
          notes: `${r.bytes / MiB} MiB in ${
            r.seconds.toFixed(2)
          } s; endpoint subprocess, client in the bench, unpinned`,
        });
      } finally {
        conn.close();
      }
      if (!v.key) {
        const rr = await rawDownload("127.0.0.1", info.rawSourcePort, P.crossBytes);
        add({
          section: S,
          name: "(b) floor: raw Deno TCP, 64 KiB writes, across processes",
          value: rr.mbPerS,
          unit: "MB/s",
          notes: `${rr.bytes / MiB} MiB`,
        });
      }
    } finally {
      await svc.stop();
    }
  }
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const started = new Date();
  const t0 = performance.now();
  const tmp = await Deno.makeTempDir({ prefix: "circuit-bench-" });
  const onSignal = () => {
    progress("interrupted: stopping servers");
    void stopAll(true).finally(() => {
      removeScratch();
      Deno.removeSync(tmp, { recursive: true });
      Deno.exit(130);
    });
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const pinnable = navigator.hardwareConcurrency >= 1 &&
      await canRun("taskset", ["-c", "0", "true"]);
    const hv = await run("hyperfine", ["--version"]).catch(() => null);
    const hyperfine = hv?.code === 0 ? hv.stdout.trim() : null;
    await environment(pinnable, hyperfine);
    const keyFile = await keygen(`${tmp}/key`);
    await section(S1, () => coldCli(tmp, keyFile, hyperfine !== null));
    await section(S2, () => peeks(tmp, keyFile, pinnable));
    await section(S3, () => bigCluster(tmp, keyFile));
    await section(S4, () => idle(tmp, keyFile));
    await section(S5, () => throughput(keyFile));
    const ctx: SectionContext = {
      tmp,
      keyFile,
      quick: QUICK,
      pinnable,
      hyperfine,
      add,
      note: (text) => notes.push(text),
      progress,
    };
    await section(S6, () => procStart(ctx));
    await section(S7, () => stdoutStream(ctx));
    await section(S8, () => channels(ctx));
    await section(S_DNS, () => dnsBench(ctx));
    await section(S_MEMBERSHIP, () => membershipBench(ctx));
  } finally {
    await stopAll();
    removeScratch();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  const report: Report = {
    started: started.toISOString(),
    durationS: (performance.now() - t0) / 1000,
    quick: QUICK,
    ...(ONLY ? { only: [...ONLY].sort((a, b) => a - b) } : {}),
    environment: env,
    figures,
    notes,
  };
  const md = await writeReport(OUT, report);
  console.log(md);
  const failed = figures.filter((f) => f.pass === false).length;
  progress(`wrote ${OUT}/report.json and report.md; ${failed} figure(s) miss their goal`);
  return 0;
}

if (import.meta.main) Deno.exit(await main());
