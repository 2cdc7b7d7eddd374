/**
 * Measuring client, run as a subprocess so it can be pinned with `taskset`.
 *
 * Usage: `deno run -A bench/_peek_client.ts '<JSON ClientJob>'`. Prints one JSON line,
 * a {@linkcode ClientResult}: per-operation latency in microseconds.
 *
 * @module
 */

import { connect, readKeyFile } from "../mod.ts";
import { summarize, type Summary } from "./_stats.ts";

/** What to measure. */
export interface ClientJob {
  /** `peek` or `ls` through the client library; `raw`: a raw TCP echo round trip. */
  mode: "peek" | "ls" | "raw";
  /** Server URL (library modes). */
  url?: string;
  /** Key file (library modes, keyed clusters). */
  keyFile?: string;
  /** Anchor path (library modes). */
  path?: string;
  /** `ls` recursively. */
  recursive?: boolean;
  /** Per-call time limit passed to the library; omitted: the client default (10 s). */
  timeoutMs?: number;
  /** Raw mode: where the echo listens. */
  host?: string;
  /** Raw mode: its port. */
  port?: number;
  /** Raw mode: bytes per round trip. @default {100} */
  size?: number;
  /** Timed operations. */
  n: number;
  /** Untimed operations first. */
  warmup: number;
}

/** What the client prints. */
export interface ClientResult {
  /** The job's mode. */
  mode: string;
  /** Latency of each timed operation, in µs. */
  us: Summary;
  /** Wall time of the timed loop, in ms. */
  totalMs: number;
  /** The CPUs this process may run on (from /proc/self/status). */
  cpus: string;
}

async function libraryLoop(job: ClientJob): Promise<number[]> {
  const key = job.keyFile ? await readKeyFile(job.keyFile) : undefined;
  // Forwarded rows must stay forwarded: no direct connection to the other server.
  const client = await connect(job.url!, { key, direct: false });
  try {
    const anchor = client.walk(job.path ?? client.server);
    const opts = job.timeoutMs !== undefined ? { timeoutMs: job.timeoutMs } : {};
    const op = job.mode === "ls"
      ? () => anchor.ls({ recursive: job.recursive, ...opts })
      : () => anchor.peek(opts);
    for (let i = 0; i < job.warmup; i++) await op();
    const samples = new Array<number>(job.n);
    for (let i = 0; i < job.n; i++) {
      const t = performance.now();
      await op();
      samples[i] = (performance.now() - t) * 1000;
    }
    return samples;
  } finally {
    client.close();
  }
}

async function rawLoop(job: ClientJob): Promise<number[]> {
  const conn = await Deno.connect({ hostname: job.host ?? "127.0.0.1", port: job.port! });
  conn.setNoDelay(true);
  const size = job.size ?? 100;
  const out = new Uint8Array(size).fill(7);
  const buf = new Uint8Array(size);
  const once = async () => {
    await conn.write(out);
    let got = 0;
    while (got < size) {
      const n = await conn.read(buf.subarray(got));
      if (n === null) throw new Error("raw echo closed");
      got += n;
    }
  };
  try {
    for (let i = 0; i < job.warmup; i++) await once();
    const samples = new Array<number>(job.n);
    for (let i = 0; i < job.n; i++) {
      const t = performance.now();
      await once();
      samples[i] = (performance.now() - t) * 1000;
    }
    return samples;
  } finally {
    conn.close();
  }
}

function allowedCpus(): string {
  try {
    return /Cpus_allowed_list:\s*(\S+)/.exec(Deno.readTextFileSync("/proc/self/status"))?.[1] ??
      "?";
  } catch {
    return "?";
  }
}

if (import.meta.main) {
  const job = JSON.parse(Deno.args[0]) as ClientJob;
  const samples = job.mode === "raw" ? await rawLoop(job) : await libraryLoop(job);
  const result: ClientResult = {
    mode: job.mode,
    us: summarize(samples),
    totalMs: samples.reduce((a, b) => a + b, 0) / 1000,
    cpus: allowedCpus(),
  };
  Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(result) + "\n"));
  Deno.exit(0);
}
