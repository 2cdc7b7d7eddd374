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
 * Each section is a file in `bench/sections/`, listed in order by `bench/sections/mod.ts`.
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
import { canRun, keygen, ROOT, run, stopAll } from "./_cluster.ts";
import type { Section, SectionContext } from "./_context.ts";
import { removeScratch } from "./_peers.ts";
import { type Figure, figure, type Report, writeReport } from "./_report.ts";
import { SECTIONS } from "./sections/mod.ts";

const USAGE = `usage: deno task bench [--quick] [--only N[,N...]] (sections 1-${SECTIONS.length})`;

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
  if (nums.some((x) => !/^[1-9]\d*$/.test(x) || !SECTIONS.some((s) => s.n === Number(x)))) {
    fail(`--only wants section numbers 1-${SECTIONS.length}, got "${values.only}"`);
  }
  return { quick: values.quick === true, only: new Set(nums.map(Number)) };
}

const { quick: QUICK, only: ONLY } = options(Deno.args);

const OUT = `${ROOT}bench/out`;
const figures: Figure[] = [];
const notes: string[] = [];
const env: Record<string, string | number | boolean> = {};

function progress(msg: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`[bench] ${msg}\n`));
}

/**
 * Run one section; a failure becomes a note and a null figure, not an abort. Every
 * subprocess is stopped after it.
 *
 * @param s the section
 * @param ctx the run's context
 */
async function runSection(s: Section, ctx: SectionContext): Promise<void> {
  if (ONLY && !ONLY.has(s.n)) return;
  progress(s.title);
  const load = (await Deno.readTextFile("/proc/loadavg").catch(() => "?")).split(" ")[0];
  env[`load average at start of section ${s.n}`] = load;
  const t = performance.now();
  try {
    await s.run(ctx);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    progress(`${s.title} failed: ${msg}`);
    ctx.add({ section: s.title, name: "(measurement failed)", value: null, unit: "", notes: msg });
  } finally {
    await stopAll();
    removeScratch();
  }
  progress(`${s.title}: ${((performance.now() - t) / 1000).toFixed(1)} s`);
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
    const ctx: SectionContext = {
      tmp,
      keyFile: await keygen(`${tmp}/key`),
      quick: QUICK,
      pinnable,
      hyperfine,
      add: (f) => void figures.push(figure(f)),
      note: (text) => void notes.push(text),
      progress,
    };
    for (const s of SECTIONS) await runSection(s, ctx);
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
