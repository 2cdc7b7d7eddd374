/**
 * DNS section of the benchmark: A lookups over UDP with dnsperf against a DNS element,
 * beside nsd serving the same zone on another loopback port.
 *
 * A third responder shows the runtime's ceiling: `bench/_udp_floor.ts` answers every
 * query with a fixed record on the same socket API as the element, parsing nothing.
 *
 * Each server gets two dnsperf runs over the same query list: a closed loop with 100
 * queries outstanding (queries/s at saturation) and a paced run at a fixed rate with
 * `-v`, whose per-query latencies give the p50 and p99. A peer that cannot run is recorded
 * as skipped.
 *
 * @module
 */

import { connect, readKeyFile } from "../../mod.ts";
import { Cluster, denoArgv, ROOT, run, spawnDaemon, spawnService } from "../_cluster.ts";
import type { Section, SectionContext } from "../_context.ts";
import { type Peer, sparePort } from "../_peers.ts";
import { summarize } from "../_stats.ts";

const TITLE = "9. DNS (dnsperf, A over UDP)";

function params(quick: boolean) {
  return quick
    ? { names: 200, seconds: 2, pacedQps: 2000 }
    : { names: 1000, seconds: 8, pacedQps: 5000 };
}

/** What one dnsperf run measured. */
interface PerfRun {
  qps: number;
  lost: number;
  /** Per-query latencies in ms (verbose runs only). */
  latenciesMs: number[];
}

async function dnsperf(port: number, queries: string, seconds: number, pacedQps?: number) {
  const args = ["-s", "127.0.0.1", "-p", String(port), "-d", queries, "-l", String(seconds)];
  if (pacedQps) args.push("-Q", String(pacedQps), "-v");
  const r = await run("dnsperf", args);
  if (r.code !== 0) throw new Error(`dnsperf exited ${r.code}: ${r.stderr.trim()}`);
  const qps = Number(/Queries per second:\s+([\d.]+)/.exec(r.stdout)?.[1]);
  const lost = Number(/Queries lost:\s+(\d+)/.exec(r.stdout)?.[1] ?? 0);
  if (!Number.isFinite(qps)) throw new Error(`dnsperf printed no rate: ${r.stdout.slice(-300)}`);
  const latenciesMs = [...r.stdout.matchAll(/^> NOERROR \S+ A ([\d.]+)$/gm)].map((m) =>
    Number(m[1]) * 1000
  );
  return { qps, lost, latenciesMs } satisfies PerfRun;
}

function zoneRecords(n: number): string[] {
  const rrs = [
    "bench. 60 IN SOA ns.bench. admin.bench. 1 7200 3600 1209600 60",
    "bench. 60 IN NS ns.bench.",
    "ns.bench. 60 IN A 127.0.0.1",
  ];
  for (let i = 0; i < n; i++) rrs.push(`h${i}.bench. 60 IN A 10.0.${i >> 8}.${i & 255}`);
  return rrs;
}

async function startNsd(dir: string, zone: string[]): Promise<Peer> {
  await Deno.mkdir(dir, { recursive: true });
  const port = sparePort();
  await Deno.writeTextFile(`${dir}/bench.zone`, zone.join("\n") + "\n");
  await Deno.writeTextFile(
    `${dir}/nsd.conf`,
    [
      "server:",
      "  ip-address: 127.0.0.1",
      `  port: ${port}`,
      '  username: ""',
      '  chroot: ""',
      `  zonesdir: "${dir}"`,
      '  database: ""',
      `  zonelistfile: "${dir}/zone.list"`,
      `  xfrdfile: "${dir}/xfrd.state"`,
      `  xfrdir: "${dir}"`,
      `  pidfile: "${dir}/nsd.pid"`,
      "  server-count: 1",
      // Response rate limiting is on by default in Debian's nsd: dnsperf cycling through a
      // few hundred names from one address trips it, and nsd then drops or truncates
      // answers (it measured 40-50k q/s with 100 lost instead of 150-190k).
      "  rrl-ratelimit: 0",
      "  rrl-whitelist-ratelimit: 0",
      "remote-control:",
      "  control-enable: no",
      "zone:",
      '  name: "bench."',
      '  zonefile: "bench.zone"',
      "",
    ].join("\n"),
  );
  const ready = async () =>
    (await run("dig", ["@127.0.0.1", "-p", String(port), "+short", "+time=1", "ns.bench", "A"]))
      .stdout.trim() === "127.0.0.1";
  const svc = await spawnDaemon({ cmd: "nsd", args: ["-d", "-c", `${dir}/nsd.conf`] }, ready);
  return { svc, port };
}

/**
 * Queries/s and latency of A lookups over UDP: a DNS element in a keyed circuit server,
 * and nsd with the same zone.
 *
 * @param ctx the run's context
 */
async function dnsBench(ctx: SectionContext): Promise<void> {
  const S = TITLE;
  const P = params(ctx.quick);
  for (const tool of ["dnsperf", "dig"]) {
    if ((await run("sh", ["-c", `command -v ${tool}`])).code !== 0) {
      ctx.add({ section: S, name: "all (skipped)", value: null, unit: "", notes: `no ${tool}` });
      return;
    }
  }
  const zone = zoneRecords(P.names);
  const queries = `${ctx.tmp}/dns-queries.txt`;
  await Deno.writeTextFile(
    queries,
    Array.from({ length: P.names }, (_, i) => `h${i}.bench A`).join("\n") + "\n",
  );
  const measure = async (name: string, port: number, judged: boolean) => {
    try {
      ctx.progress(`dnsperf against ${name}`);
      const sat = await dnsperf(port, queries, P.seconds);
      const paced = await dnsperf(port, queries, P.seconds, P.pacedQps);
      const lat = summarize(paced.latenciesMs);
      const how = `dnsperf -l ${P.seconds}, ${P.names} names`;
      ctx.add({
        section: S,
        name: `${name}: queries/s, 100 outstanding`,
        value: sat.qps,
        unit: "q/s",
        ...(judged ? { goal: { op: ">=" as const, value: 100_000 } } : {}),
        notes: `${how}; ${sat.lost} lost`,
      });
      for (const [p, v] of [["p50", lat.p50], ["p99", lat.p99]] as const) {
        ctx.add({
          section: S,
          name: `${name}: ${p} latency at ${P.pacedQps} q/s`,
          value: v,
          unit: "ms",
          ...(judged && p === "p99" ? { goal: { op: "<=" as const, value: 1 } } : {}),
          notes: `${how} -Q ${P.pacedQps} -v; ${lat.n} answers, ${paced.lost} lost`,
        });
      }
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      ctx.add({ section: S, name: `${name} (failed)`, value: null, unit: "", notes: msg });
    }
  };

  await using c = new Cluster(`${ctx.tmp}/dns`, ctx.keyFile);
  const srv = await c.add();
  await using client = await connect(srv.url, { key: await readKeyFile(ctx.keyFile) });
  const ns = await client.walk(`/X${srv.id}/bench-dns`).makeNameserver("127.0.0.1");
  for (const rr of zone) await ns.set(rr);
  const port = Number((await ns.peek()).Address.split(":").pop());
  await measure("circuit dns element", port, true);
  await ns.scrub();

  // The runtime's own ceiling: the same socket API answering without parsing anything.
  try {
    const floor = await spawnService(denoArgv(`${ROOT}bench/_udp_floor.ts`, []));
    try {
      await measure("floor: canned-reply UDP responder in Deno", Number(floor.line), false);
    } finally {
      await floor.stop();
    }
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    ctx.add({ section: S, name: "floor (failed)", value: null, unit: "", notes: msg });
  }

  if ((await run("sh", ["-c", "command -v nsd"])).code !== 0) {
    ctx.add({ section: S, name: "nsd (skipped)", value: null, unit: "", notes: "no nsd" });
    return;
  }
  let nsd: Peer | null = null;
  try {
    nsd = await startNsd(`${ctx.tmp}/nsd`, zone);
    await measure("nsd 4 (1 server process, no rate limiting)", nsd.port, false);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    ctx.add({ section: S, name: "nsd (skipped)", value: null, unit: "", notes: msg });
  } finally {
    await nsd?.svc.stop();
  }
}

/** Section 9. */
export const dnsSection: Section = { n: 9, title: TITLE, run: dnsBench };
