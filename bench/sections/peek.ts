/**
 * Section 2 of the benchmark: library `peek` round trips, dialed and forwarded, keyed and
 * unkeyed, pinned and not, beside a raw Deno TCP echo.
 *
 * @module
 */

import { Cluster, denoArgv, ROOT, spawnService, waitConverged } from "../_cluster.ts";
import { PEEK_CLIENT, runJob, type Section, type SectionContext } from "../_context.ts";
import type { ClientJob, ClientResult } from "../_peek_client.ts";

const TITLE = "2. Library `peek` round trip";

function params(quick: boolean) {
  return quick ? { peekN: 1000, peekWarmup: 2000 } : { peekN: 5000, peekWarmup: 3000 };
}

async function peeks(ctx: SectionContext): Promise<void> {
  const S = TITLE;
  const P = params(ctx.quick);
  const { tmp, keyFile, pinnable } = ctx;
  const modes: { pinned: boolean; pin?: string }[] = pinnable
    ? [{ pinned: true, pin: "0" }, { pinned: false }]
    : [{ pinned: false }];
  if (!pinnable) ctx.note("taskset is not usable here: peeks were measured unpinned only.");
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
      const r = await runJob<ClientResult>(PEEK_CLIENT, j.job, m.pin);
      const goal = j.goal ? { op: "<=" as const, value: 100 } : undefined;
      ctx.add({
        section: S,
        name: `${j.name}: p50`,
        value: r.us.p50,
        unit: "µs",
        goal,
        notes: `${j.note}; ${r.us.n} sequential after ${warmup} warm-up (steady state: V8 ` +
          `optimizes the call path after a few thousand calls; a long-lived client runs there); ` +
          `client CPUs ${r.cpus}`,
      });
      ctx.add({
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

/** Section 2. */
export const peekSection: Section = { n: 2, title: TITLE, run: peeks };
