/**
 * Section 3 of the benchmark: join convergence of 20 servers, recursive `ls /...` over
 * them, and the idle CPU of one of them.
 *
 * @module
 */

import { connect, readKeyFile } from "../../mod.ts";
import { Cluster, waitConverged } from "../_cluster.ts";
import type { Section, SectionContext } from "../_context.ts";
import { cpuPercent, sampleProc } from "../_proc.ts";
import { summarize } from "../_stats.ts";

/** Servers in the cluster (the same with `--quick`). */
const BIG_CLUSTER = 20;

const TITLE = `3. \`ls /...\` over ${BIG_CLUSTER} servers`;

function params(quick: boolean) {
  return quick ? { lsN: 20, idleS: 5 } : { lsN: 50, idleS: 30 };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function bigCluster(ctx: SectionContext): Promise<void> {
  const S = TITLE;
  const P = params(ctx.quick);
  const { tmp, keyFile } = ctx;
  const N = BIG_CLUSTER;
  await using c = new Cluster(`${tmp}/big`, keyFile);
  const seed = await c.add();
  const t0 = performance.now();
  await c.star(N);
  const tUrls = performance.now() - t0;
  const conv = await waitConverged(c.servers.map((s) => s.url), N, keyFile, 60_000);
  const tConv = performance.now() - t0;
  ctx.add({
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
    ctx.add({
      section: S,
      name: "recursive ls / from the library: p50",
      value: s.p50,
      unit: "ms",
      notes:
        `${s.n} sequential after 5 warm-up, ${count} entries, client in the bench process, unpinned`,
    });
    ctx.add({
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
  const idleS = Math.min(10, P.idleS);
  const pids = [c.servers[0].pid, c.servers[N - 1].pid];
  const before = pids.map((pid) => sampleProc(pid));
  await sleep(idleS * 1000);
  const after = pids.map((pid) => sampleProc(pid));
  const cpu = pids.map((_, i) => cpuPercent(before[i], after[i]));
  ctx.add({
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

/** Section 3. */
export const bigClusterSection: Section = { n: 3, title: TITLE, run: bigCluster };
