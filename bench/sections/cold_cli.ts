/**
 * Section 1 of the benchmark: cold CLI `circuit ls /` wall time (hyperfine when
 * installed), beside `deno run` of an empty script and of one that only loads msgpackr
 * and node:crypto, the compiled binary when there is one, and ssh.
 *
 * @module
 */

import { canRun, CLI, Cluster, ROOT, run, type ServerProc } from "../_cluster.ts";
import type { Section, SectionContext } from "../_context.ts";
import { summarize, type Summary } from "../_stats.ts";

const TITLE = "1. Cold CLI `circuit ls /` (1-server cluster)";

type Params = ReturnType<typeof params>;

function params(quick: boolean) {
  return quick ? { cliRuns: 10, cliWarmup: 2 } : { cliRuns: 30, cliWarmup: 3 };
}

interface Timed {
  name: string;
  argv: string[];
  /** Wall times in ms. */
  ms: Summary;
}

async function hyperfineRuns(
  P: Params,
  cmds: { name: string; argv: string[] }[],
  tmp: string,
): Promise<Timed[]> {
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

async function spawnLoopRuns(
  P: Params,
  cmds: { name: string; argv: string[] }[],
): Promise<Timed[]> {
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

/** A command the section times, with what the report says about it. */
interface Cmd {
  name: string;
  argv: string[];
  /** Judge it against the 60 ms goal. */
  goal?: boolean;
  /** A string its stdout must hold for it to count as working. */
  expect?: string;
  note: string;
}

/** The scripts the floors run: empty, importing mod.ts only, loading a keyed CLI's libraries. */
async function writeScripts(
  tmp: string,
): Promise<{ empty: string; importOnly: string; libs: string }> {
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
  return { empty, importOnly, libs };
}

/** The floors and the CLI's own commands, against an unkeyed and a keyed server. */
function baseCommands(
  scripts: { empty: string; importOnly: string; libs: string },
  p: ServerProc,
  k: ServerProc,
  keyFile: string,
): Cmd[] {
  const deno = Deno.execPath();
  return [
    {
      name: "floor: deno run -A empty.ts",
      argv: [deno, "run", "-A", scripts.empty],
      note: "Deno start-up alone; no CLI can be cold-started faster with `deno run`",
    },
    {
      name: "import mod.ts only (no dial)",
      argv: [deno, "run", "-A", "--config", `${ROOT}deno.json`, scripts.importOnly],
      note: "module loading of the client library (msgpackr and its own modules; node:crypto " +
        "loads only at the first keyed dial) without running",
    },
    {
      name: "floor: deno run importing msgpackr and node:crypto",
      argv: [deno, "run", "-A", "--config", `${ROOT}deno.json`, scripts.libs],
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
}

/** The compiled binary and `ssh localhost true`, each when it can run here (else a note). */
async function optionalCommands(
  ctx: SectionContext,
  k: ServerProc,
  keyFile: string,
): Promise<Cmd[]> {
  const cmds: Cmd[] = [];
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
    ctx.note(
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
    ctx.note(
      "Peer `ssh localhost true` skipped: " +
        (sshd ? "key login to localhost does not work" : "openssh-server is not installed") +
        " (this section uses the system sshd on port 22; sections 6 and 7 start a private one).",
    );
  }
  return cmds;
}

/** Each command must work before it is timed. */
async function checkCommands(cmds: Cmd[]): Promise<void> {
  for (const c of cmds) {
    const r = await run(c.argv[0], c.argv.slice(1));
    if (r.code !== 0 || (c.expect && !r.stdout.includes(c.expect))) {
      throw new Error(`${c.name} does not work: exit ${r.code} ${r.stderr.trim().split("\n")[0]}`);
    }
  }
}

/** Three rows per command: mean, p50, p99. */
function reportTimes(ctx: SectionContext, cmds: Cmd[], timed: Timed[], how: string): void {
  for (const [i, t] of timed.entries()) {
    const c = cmds[i];
    const goal = c.goal ? { op: "<=" as const, value: 60 } : undefined;
    ctx.add({
      section: TITLE,
      name: `${t.name}: mean`,
      value: t.ms.mean,
      unit: "ms",
      goal,
      notes: `${c.note}; ${how}`,
    });
    ctx.add({ section: TITLE, name: `${t.name}: p50`, value: t.ms.p50, unit: "ms", goal });
    ctx.add({
      section: TITLE,
      name: `${t.name}: p99`,
      value: t.ms.p99,
      unit: "ms",
      notes: `min ${t.ms.min.toFixed(1)} ms`,
    });
  }
}

/**
 * Section 1: every command checked, then timed (hyperfine or a spawn loop).
 *
 * @param ctx the run's context
 */
async function coldCli(ctx: SectionContext): Promise<void> {
  const P = params(ctx.quick);
  const { tmp, keyFile } = ctx;
  const hyperfine = ctx.hyperfine !== null;
  await using plain = new Cluster(`${tmp}/cli-plain`);
  await using keyed = new Cluster(`${tmp}/cli-keyed`, keyFile);
  const [p, k] = await Promise.all([plain.add(), keyed.add()]);
  const cmds = baseCommands(await writeScripts(tmp), p, k, keyFile);
  cmds.push(...await optionalCommands(ctx, k, keyFile));
  await checkCommands(cmds);
  const timed = hyperfine ? await hyperfineRuns(P, cmds, tmp) : await spawnLoopRuns(P, cmds);
  const how = hyperfine
    ? `hyperfine -N --warmup ${P.cliWarmup} --runs ${P.cliRuns}`
    : `${P.cliRuns} spawns after ${P.cliWarmup} warm-up, performance.now()`;
  reportTimes(ctx, cmds, timed, how);
}

/** Section 1. */
export const coldCliSection: Section = { n: 1, title: TITLE, run: coldCli };
