/**
 * Section 6 of the benchmark: process start→exit of `/bin/true` through the library
 * (dialed, forwarded, and over a direct connection to the other server) and starts/s with
 * 16 in flight, beside the local spawn floor and ssh.
 *
 * @module
 */

import { setsidPath } from "../../elements/proc/launch.ts";
import { Cluster, type ServerProc, stopAll, waitConverged } from "../_cluster.ts";
import {
  commandRate,
  part,
  type Section,
  type SectionContext,
  timeCommand,
  workJob,
} from "../_context.ts";
import { startPeer, startSshd } from "../_peers.ts";
import type { Goal } from "../_report.ts";
import type { LatencyResult, RateResult } from "../_work_client.ts";

const TITLE = "6. Process start→exit of `/bin/true`";

function params(quick: boolean) {
  return quick
    ? { procN: 100, procWarmup: 20, rateS: 2, loops: 16, sshRuns: 10, sshMuxRuns: 30 }
    : { procN: 300, procWarmup: 50, rateS: 4, loops: 16, sshRuns: 30, sshMuxRuns: 100 };
}

type Params = ReturnType<typeof params>;

const LATENCY_GOAL: Goal = { op: "<=", value: 1.2 };
const RATE_GOAL: Goal = { op: ">=", value: 500 };

/** How the cluster, the client and the children run: pinned to core 0 or not. */
interface Mode {
  /** For the notes. */
  tag: string;
  /** A `taskset -c` CPU list. */
  pin?: string;
}

/** Where a library figure's process runs, and over which route. */
type Where = "dialed" | "forwarded" | "direct";

/** What the steps of one mode share. */
interface ModeRun {
  ctx: SectionContext;
  P: Params;
  m: Mode;
  /** "pinned" or "unpinned", for the names. */
  short: string;
  /** The dialed server. */
  a: ServerProc;
}

/** makeProc→wait and make+wait+scrub latency through the library. */
async function procLatency(run: ModeRun, where: Where, srv: ServerProc): Promise<void> {
  const { ctx, P, m, short } = run;
  const name = where === "direct"
    ? `library, other server over a direct connection, ${short}`
    : `library, ${where} server, ${short}`;
  await part(ctx, TITLE, name, async () => {
    const r = await workJob<LatencyResult>({
      mode: "proc-latency",
      url: run.a.url,
      keyFile: ctx.keyFile,
      direct: where === "direct",
      server: `/X${srv.id}`,
      n: P.procN,
      warmup: P.procWarmup,
    }, m.pin);
    const parts = r.parts!;
    const how = `${r.lat.n} sequential after ${P.procWarmup} warm-up, keyed, a fresh ` +
      `anchor each; ${m.tag}; client CPUs ${r.cpus}`;
    ctx.add({
      section: TITLE,
      name: `${name}: makeProc→wait done, p50`,
      value: r.lat.p50,
      unit: "ms",
      goal: LATENCY_GOAL,
      notes: `${how}; medians: makeProc ${parts.makeProc.toFixed(2)} ms, wait ` +
        `${parts.wait.toFixed(2)} ms, scrub ${parts.scrub.toFixed(2)} ms` +
        (where === "forwarded"
          ? "; client dials the first server, the process runs on " +
            "the second (-j the first), every call forwarded (direct: false)"
          : where === "direct"
          ? "; client dials the first server and, as the library does by default, " +
            "reaches the second (where the process runs) over its own connection"
          : ""),
    });
    ctx.add({
      section: TITLE,
      name: `${name}: makeProc→wait done, p99`,
      value: r.lat.p99,
      unit: "ms",
      notes: `mean ${r.lat.mean.toFixed(2)} ms, max ${r.lat.max.toFixed(1)} ms`,
    });
    ctx.add({
      section: TITLE,
      name: `${name}: make+wait+scrub cycle, p50`,
      value: r.lat2!.p50,
      unit: "ms",
      notes: "makeProc, wait, then scrub (the anchor is freed)",
    });
    ctx.add({
      section: TITLE,
      name: `${name}: make+wait+scrub cycle, p99`,
      value: r.lat2!.p99,
      unit: "ms",
      notes: `mean ${r.lat2!.mean.toFixed(2)} ms`,
    });
  });
}

/** The floor: `Deno.Command("/bin/true")` in the client process. */
async function spawnFloor(run: ModeRun): Promise<void> {
  const { ctx, P, m, short } = run;
  await part(ctx, TITLE, `floor: local spawn, ${short}`, async () => {
    const r = await workJob<LatencyResult>(
      { mode: "spawn-latency", n: P.procN, warmup: P.procWarmup },
      m.pin,
    );
    const how = `\`await new Deno.Command("/bin/true").output()\` in the client process; ` +
      `${r.lat.n} sequential after ${P.procWarmup} warm-up; client CPUs ${r.cpus}`;
    ctx.add({
      section: TITLE,
      name: `floor: local Deno.Command spawn, ${short}: p50`,
      value: r.lat.p50,
      unit: "ms",
      notes: how,
    });
    ctx.add({
      section: TITLE,
      name: `floor: local Deno.Command spawn, ${short}: p99`,
      value: r.lat.p99,
      unit: "ms",
      notes: `mean ${r.lat.mean.toFixed(2)} ms`,
    });
  });
}

/** The floor: a spawn as the proc element does it, with setsid where it would use it. */
async function serverLikeFloors(run: ModeRun): Promise<void> {
  const { ctx, P, m, short } = run;
  // setsid only where the element would use it (see elements/proc/launch.ts).
  const hows = setsidPath() ? ["setsid", "detached"] as const : ["detached"] as const;
  for (const how of hows) {
    await part(
      ctx,
      TITLE,
      `floor: local spawn as the server does it (${how}), ${short}`,
      async () => {
        const r = await workJob<LatencyResult>(
          { mode: "spawn-latency", n: P.procN, warmup: P.procWarmup, serverLike: how },
          m.pin,
        );
        ctx.add({
          section: TITLE,
          name: how === "setsid"
            ? `floor: local spawn of setsid /bin/true with 3 pipes, ${short}: p50`
            : `floor: local spawn() with 3 pipes and detached: true, ${short}: p50`,
          value: r.lat.p50,
          unit: "ms",
          notes: (how === "setsid"
            ? "what the proc element does where the host has setsid: the child in its own " +
              "process group and session, with two execs (setsid, then the program) and no " +
              "fork of the server"
            : "the proc element's way without setsid: Deno forks the whole process to call " +
              "setsid() before the exec") +
            `; spawn → status in the client process; the synchronous spawn() call alone: ` +
            `median ${r.parts!.spawnCall.toFixed(2)} ms (it blocks the event loop that ` +
            `long); ${r.lat.n} after ${P.procWarmup} warm-up; p99 ${r.lat.p99.toFixed(2)} ms`,
        });
      },
    );
  }
}

/** Starts/s through the library with `loops` in flight (unpinned: rates need both cores). */
async function procRate(run: ModeRun, where: Where, srv: ServerProc): Promise<void> {
  const { ctx, P } = run;
  const name = where === "direct"
    ? `library, other server over a direct connection, ${P.loops} in flight, unpinned`
    : `library, ${where} server, ${P.loops} in flight, unpinned`;
  await part(ctx, TITLE, name, async () => {
    const r = await workJob<RateResult>({
      mode: "proc-rate",
      url: run.a.url,
      keyFile: ctx.keyFile,
      direct: where === "direct",
      server: `/X${srv.id}`,
      loops: P.loops,
      seconds: P.rateS,
    });
    ctx.add({
      section: TITLE,
      name: `${name}: starts/s`,
      value: r.perS,
      unit: "starts/s",
      goal: RATE_GOAL,
      notes: `${P.loops} concurrent make→wait→scrub loops, each on its own anchor, one ` +
        `connection; ${r.ops} cycles in ${r.seconds.toFixed(1)} s after 0.5 s warm-up`,
    });
  });
}

/** The floor: local spawns/s with `loops` in flight. */
async function spawnRateFloor(ctx: SectionContext, P: Params): Promise<void> {
  await part(ctx, TITLE, "floor: local spawn rate", async () => {
    const r = await workJob<RateResult>({
      mode: "spawn-rate",
      loops: P.loops,
      seconds: P.rateS,
    });
    ctx.add({
      section: TITLE,
      name: `floor: local Deno.Command spawn, ${P.loops} in flight: starts/s`,
      value: r.perS,
      unit: "starts/s",
      notes: `${P.loops} concurrent loops in one Deno process; ${r.ops} in ` +
        `${r.seconds.toFixed(1)} s`,
    });
  });
}

/** Every library figure and floor of one mode, on a fresh two-server cluster. */
async function inMode(ctx: SectionContext, P: Params, m: Mode): Promise<void> {
  const short = m.pin ? "pinned" : "unpinned";
  await using c = new Cluster(`${ctx.tmp}/proc-${short}`, ctx.keyFile, m.pin);
  const a = await c.add();
  const b = await c.add(a.url);
  await waitConverged([a.url, b.url], 2, ctx.keyFile);
  const run: ModeRun = { ctx, P, m, short, a };
  const targets: [Where, ServerProc][] = [["dialed", a], ["forwarded", b], ["direct", b]];
  for (const [where, srv] of targets) await procLatency(run, where, srv);
  await spawnFloor(run);
  await serverLikeFloors(run);
  if (m.pin) return; // rates need both cores
  for (const [where, srv] of targets) await procRate(run, where, srv);
  await spawnRateFloor(ctx, P);
  await c.stop();
}

/** The peer: ssh /bin/true, on a new connection and over ControlMaster, and its rate. */
async function sshStarts(ctx: SectionContext, P: Params): Promise<void> {
  const { tmp } = ctx;
  const ssh = await startPeer(
    ctx,
    { section: TITLE, name: "peer: ssh /bin/true", unit: "ms" },
    () => startSshd(`${tmp}/sshd-proc`),
  );
  if (!ssh) return;
  try {
    const fresh = await timeCommand(
      "ssh",
      [...ssh.argv, "/bin/true"],
      P.sshRuns,
      2,
      ctx.hyperfine !== null,
      tmp,
    );
    const base = `private sshd on 127.0.0.1:${ssh.port}, ed25519 key, root; bash skips ` +
      `~/.bashrc (SHLVL=1 sent); unpinned`;
    ctx.add({
      section: TITLE,
      name: "peer: ssh 127.0.0.1 /bin/true, new connection: p50",
      value: fresh.ms.p50,
      unit: "ms",
      notes: `${base}; ${fresh.how} (fewer runs: each is a full key exchange)`,
    });
    ctx.add({
      section: TITLE,
      name: "peer: ssh 127.0.0.1 /bin/true, new connection: p99",
      value: fresh.ms.p99,
      unit: "ms",
      notes: `mean ${fresh.ms.mean.toFixed(1)} ms, min ${fresh.ms.min.toFixed(1)} ms`,
    });
    const mux = await timeCommand(
      "ssh-mux",
      [...ssh.muxArgv, "/bin/true"],
      P.sshMuxRuns,
      5,
      ctx.hyperfine !== null,
      tmp,
    );
    ctx.add({
      section: TITLE,
      name: "peer: ssh /bin/true over an open connection (ControlMaster): p50",
      value: mux.ms.p50,
      unit: "ms",
      notes: `the closest ssh gets to the library's open connection: one new session ` +
        `(channel) on a master connection, plus the ssh client's own start; ${mux.how}`,
    });
    ctx.add({
      section: TITLE,
      name: "peer: ssh /bin/true over an open connection (ControlMaster): p99",
      value: mux.ms.p99,
      unit: "ms",
      notes: `mean ${mux.ms.mean.toFixed(1)} ms`,
    });
    const rate = await commandRate([...ssh.muxArgv, "/bin/true"], P.loops, P.rateS);
    ctx.add({
      section: TITLE,
      name: `peer: ssh over ControlMaster, ${P.loops} in flight: starts/s`,
      value: rate.perS,
      unit: "starts/s",
      notes: `${P.loops} concurrent loops of \`ssh … /bin/true\` on one master connection ` +
        `(MaxSessions 64); ${rate.ops} ok${rate.failed ? `, ${rate.failed} failed` : ""}`,
    });
  } finally {
    await ssh.closeMaster();
    await ssh.svc.stop();
  }
}

/**
 * Section 6: makeProc(/bin/true) → wait (→ scrub) latency, dialed and forwarded, pinned
 * and not; starts/s with 16 loops in flight; the local spawn floor; ssh.
 *
 * @param ctx the run's context
 */
async function procStart(ctx: SectionContext): Promise<void> {
  const P = params(ctx.quick);
  const modes: Mode[] = ctx.pinnable
    ? [{ tag: "pinned: client, servers and children on core 0", pin: "0" }, { tag: "unpinned" }]
    : [{ tag: "unpinned" }];
  if (!ctx.pinnable) ctx.note("Section 6: taskset is not usable here; measured unpinned only.");
  for (const m of modes) await inMode(ctx, P, m);
  await stopAll();
  await sshStarts(ctx, P);
}

/** Section 6. */
export const procStartSection: Section = { n: 6, title: TITLE, run: procStart };
