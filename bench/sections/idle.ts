/**
 * Section 4 of the benchmark: idle RSS and CPU of a server in a 3-server cluster, beside
 * idle Deno processes that only listen, that load the transport, and that do only the
 * membership packets.
 *
 * @module
 */

import { DEFAULT_MEMBERSHIP_CONFIG } from "../../net/membership/mod.ts";
import { PEER_KEEPALIVE } from "../../server/config.ts";
import { Cluster, denoArgv, ROOT, spawnService, waitConverged } from "../_cluster.ts";
import type { Section, SectionContext } from "../_context.ts";
import { clockTicks, cpuPercent, sampleProc } from "../_proc.ts";

const TITLE = "4. Idle server (one of a 3-server cluster)";

function params(quick: boolean) {
  return { idleS: quick ? 5 : 30 };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function idle(ctx: SectionContext): Promise<void> {
  const S = TITLE;
  const P = params(ctx.quick);
  const { tmp, keyFile } = ctx;
  const clk = clockTicks();
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
  const before = pids.map((pid) => sampleProc(pid));
  await sleep(P.idleS * 1000);
  const after = pids.map((pid) => sampleProc(pid));
  const per = pids.map((_, i) => {
    const cpu = cpuPercent(before[i], after[i]);
    return { cpu, rss0: before[i].rssKiB * 1024 / 1e6, rss1: after[i].rssKiB * 1024 / 1e6 };
  });
  const i = 1; // a joiner, not the seed
  const all = per.slice(0, c.servers.length).map((p, k) =>
    `#${k}: ${p.rss1.toFixed(1)} MB, ${p.cpu.toFixed(2)} %`
  ).join("; ");
  ctx.add({
    section: S,
    name: "RSS at start of idle",
    value: per[i].rss0,
    unit: "MB",
    goal: { op: "<=", value: 50 },
    notes: "VmRSS, 10^6 bytes; keyed cluster, no client connected",
  });
  ctx.add({
    section: S,
    name: `RSS after ${P.idleS} s idle`,
    value: per[i].rss1,
    unit: "MB",
    goal: { op: "<=", value: 50 },
    notes: `all three: ${all}`,
  });
  ctx.add({
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
    ctx.add({
      section: S,
      name: `${f.name}: RSS`,
      value: p.rss1,
      unit: "MB",
      notes: `for scale; CPU ${p.cpu.toFixed(2)} % over the same ${P.idleS} s`,
    });
  }
  const f = per[per.length - 1];
  ctx.add({
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

/** Section 4. */
export const idleSection: Section = { n: 4, title: TITLE, run: idle };
