/**
 * What every section of the benchmark shares: the {@linkcode Section} shape `run.ts`
 * tables, the context it hands each, the one job runner (a job in a possibly pinned
 * client subprocess), timing external commands with hyperfine or a spawn loop, and
 * recording a measurement's failure.
 *
 * @module
 */

import { denoArgv, ROOT, run } from "./_cluster.ts";
import type { FigureInput } from "./_report.ts";
import { summarize, type Summary } from "./_stats.ts";
import type { WorkJob } from "./_work_client.ts";

/** What a section gets from `run.ts`. */
export interface SectionContext {
  /** A temp directory removed after the run. */
  tmp: string;
  /** The cluster key file. */
  keyFile: string;
  /** `--quick`. */
  quick: boolean;
  /** Whether `taskset` works here. */
  pinnable: boolean;
  /** hyperfine's version, or null when it is not installed. */
  hyperfine: string | null;
  /** Record a figure. */
  add(f: FigureInput): void;
  /** Record a note for the report's end. */
  note(text: string): void;
  /** Print progress on stderr. */
  progress(text: string): void;
}

/** One section of the benchmark: its number (for `--only`), its title, how to run it. */
export interface Section {
  /** 1-based; sections run in this order. */
  n: number;
  /** The report's heading, starting with `N. `. */
  title: string;
  /**
   * Measure, recording figures and notes through `ctx`. A throw is recorded as the
   * section's failure; every subprocess is stopped after it either way.
   */
  run(ctx: SectionContext): Promise<void>;
}

/** The client that runs library peek loops and raw TCP echo loops (section 2). */
export const PEEK_CLIENT = `${ROOT}bench/_peek_client.ts`;
/** The client that runs every other job (sections 6 to 8). */
export const WORK_CLIENT = `${ROOT}bench/_work_client.ts`;

/**
 * The job runner: run a job in a client subprocess (its JSON the one argument; pinned
 * with `taskset` when `pin` is given) and parse its last stdout line as the result.
 *
 * @param client {@linkcode PEEK_CLIENT} or {@linkcode WORK_CLIENT}
 * @param job the job
 * @param pin a `taskset -c` CPU list, or none
 * @returns the result
 * @throws {Error} with the client's first stderr lines when it fails
 */
export async function runJob<T>(client: string, job: { mode: string }, pin?: string): Promise<T> {
  const argv = denoArgv(client, [JSON.stringify(job)], pin);
  const r = await run(argv.cmd, argv.args);
  if (r.code !== 0) {
    const why = r.stderr.trim().split("\n").filter((l) => l.trim()).slice(0, 3).join(" / ");
    const name = client.slice(client.lastIndexOf("/") + 2, -3).replace("_", " ");
    throw new Error(`${name} (${job.mode}) failed: ${why}`);
  }
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as T;
}

/**
 * Run a job in `bench/_work_client.ts`: {@linkcode runJob} with {@linkcode WORK_CLIENT}.
 *
 * @param job the job
 * @param pin a `taskset -c` CPU list, or none
 * @returns the result
 */
export function workJob<T>(job: WorkJob, pin?: string): Promise<T> {
  return runJob<T>(WORK_CLIENT, job, pin);
}

/**
 * Wall times of an external command, with hyperfine when installed, else a spawn loop.
 *
 * @param name a label
 * @param argv the command
 * @param runs timed runs
 * @param warmup untimed runs first
 * @param hyperfine whether hyperfine is installed
 * @param tmp where hyperfine writes its JSON
 * @returns milliseconds per run and how they were taken
 */
export async function timeCommand(
  name: string,
  argv: string[],
  runs: number,
  warmup: number,
  hyperfine: boolean,
  tmp: string,
): Promise<{ ms: Summary; how: string }> {
  const check = await run(argv[0], argv.slice(1));
  if (check.code !== 0) {
    throw new Error(`${name} does not work: exit ${check.code} ${check.stderr.trim()}`);
  }
  if (hyperfine) {
    const json = `${tmp}/hf-${crypto.randomUUID().slice(0, 8)}.json`;
    const r = await run("hyperfine", [
      "-N",
      "--warmup",
      String(warmup),
      "--runs",
      String(runs),
      "--style",
      "none",
      "--export-json",
      json,
      "-n",
      name,
      argv.map(shellQuote).join(" "),
    ]);
    if (r.code !== 0) throw new Error(`hyperfine failed: ${r.stderr.trim().split("\n").pop()}`);
    const data = JSON.parse(await Deno.readTextFile(json)) as { results: { times: number[] }[] };
    return {
      ms: summarize(data.results[0].times.map((s) => s * 1000)),
      how: `hyperfine -N --warmup ${warmup} --runs ${runs}`,
    };
  }
  const times: number[] = [];
  for (let i = 0; i < warmup + runs; i++) {
    const t = performance.now();
    const o = await new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    if (o.code !== 0) throw new Error(`${name} exited ${o.code}`);
    if (i >= warmup) times.push(performance.now() - t);
  }
  return { ms: summarize(times), how: `${runs} spawns after ${warmup} warm-up, performance.now()` };
}

/**
 * Run an external command in `loops` concurrent loops for `seconds`.
 *
 * @param argv the command
 * @param loops concurrent loops
 * @param seconds how long
 * @returns completed runs per second
 */
export async function commandRate(
  argv: string[],
  loops: number,
  seconds: number,
): Promise<{ ops: number; perS: number; failed: number }> {
  let ops = 0, failed = 0;
  const t0 = performance.now(), until = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: loops }, async () => {
    while (performance.now() < until) {
      const o = await new Deno.Command(argv[0], {
        args: argv.slice(1),
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).output();
      if (o.code === 0) ops++;
      else failed++;
    }
  }));
  return { ops, perS: ops / ((performance.now() - t0) / 1000), failed };
}

/** Quote an argument for hyperfine's command line (it splits like a shell). */
function shellQuote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'"'"'`)}'`;
}

/**
 * Read a stream to its end, counting bytes.
 *
 * @param stream the bytes
 * @param onChunk called after each chunk with the count so far
 * @returns the count and the times (performance.now(), ms) of the first and last byte
 */
export async function countBytes(
  stream: ReadableStream<Uint8Array>,
  onChunk?: (n: number) => void,
): Promise<{ bytes: number; first: number; last: number }> {
  const reader = stream.getReader();
  let bytes = 0, first = 0, last = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (bytes === 0) first = performance.now();
    bytes += value.length;
    last = performance.now();
    onChunk?.(bytes);
  }
  return { bytes, first, last };
}

/**
 * Run one measurement of a section; a failure becomes a null figure with the reason and
 * the section goes on.
 */
export async function part(
  ctx: SectionContext,
  section: string,
  name: string,
  fn: () => Promise<void>,
): Promise<void> {
  try {
    await fn();
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    ctx.progress(`${name} failed: ${msg}`);
    ctx.add({ section, name: `${name} (failed)`, value: null, unit: "", notes: msg });
  }
}
