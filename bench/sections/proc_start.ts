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

// ---------------------------------------------------------------------------------------
// 6. Process start→exit

/**
 * Section 6: makeProc(/bin/true) → wait (→ scrub) latency, dialed and forwarded, pinned
 * and not; starts/s with 16 loops in flight; the local spawn floor; ssh.
 *
 * @param ctx the run's context
 */
async function procStart(ctx: SectionContext): Promise<void> {
  const S = TITLE;
  const P = params(ctx.quick);
  const { keyFile, tmp } = ctx;
  const latencyGoal: Goal = { op: "<=", value: 1.2 };
  const rateGoal: Goal = { op: ">=", value: 500 };
  const modes: { tag: string; pin?: string }[] = ctx.pinnable
    ? [{ tag: "pinned: client, servers and children on core 0", pin: "0" }, { tag: "unpinned" }]
    : [{ tag: "unpinned" }];
  if (!ctx.pinnable) ctx.note("Section 6: taskset is not usable here; measured unpinned only.");
  for (const m of modes) {
    const short = m.pin ? "pinned" : "unpinned";
    await using c = new Cluster(`${tmp}/proc-${short}`, keyFile, m.pin);
    const a = await c.add();
    const b = await c.add(a.url);
    await waitConverged([a.url, b.url], 2, keyFile);
    const targets: [string, ServerProc][] = [["dialed", a], ["forwarded", b], ["direct", b]];
    for (const [where, srv] of targets) {
      const name = where === "direct"
        ? `library, other server over a direct connection, ${short}`
        : `library, ${where} server, ${short}`;
      await part(ctx, S, name, async () => {
        const r = await workJob<LatencyResult>({
          mode: "proc-latency",
          url: a.url,
          keyFile,
          direct: where === "direct",
          server: `/X${srv.id}`,
          n: P.procN,
          warmup: P.procWarmup,
        }, m.pin);
        const parts = r.parts!;
        const how = `${r.lat.n} sequential after ${P.procWarmup} warm-up, keyed, a fresh ` +
          `anchor each; ${m.tag}; client CPUs ${r.cpus}`;
        ctx.add({
          section: S,
          name: `${name}: makeProc→wait done, p50`,
          value: r.lat.p50,
          unit: "ms",
          goal: latencyGoal,
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
          section: S,
          name: `${name}: makeProc→wait done, p99`,
          value: r.lat.p99,
          unit: "ms",
          notes: `mean ${r.lat.mean.toFixed(2)} ms, max ${r.lat.max.toFixed(1)} ms`,
        });
        ctx.add({
          section: S,
          name: `${name}: make+wait+scrub cycle, p50`,
          value: r.lat2!.p50,
          unit: "ms",
          notes: "makeProc, wait, then scrub (the anchor is freed)",
        });
        ctx.add({
          section: S,
          name: `${name}: make+wait+scrub cycle, p99`,
          value: r.lat2!.p99,
          unit: "ms",
          notes: `mean ${r.lat2!.mean.toFixed(2)} ms`,
        });
      });
    }
    await part(ctx, S, `floor: local spawn, ${short}`, async () => {
      const r = await workJob<LatencyResult>(
        { mode: "spawn-latency", n: P.procN, warmup: P.procWarmup },
        m.pin,
      );
      const how = `\`await new Deno.Command("/bin/true").output()\` in the client process; ` +
        `${r.lat.n} sequential after ${P.procWarmup} warm-up; client CPUs ${r.cpus}`;
      ctx.add({
        section: S,
        name: `floor: local Deno.Command spawn, ${short}: p50`,
        value: r.lat.p50,
        unit: "ms",
        notes: how,
      });
      ctx.add({
        section: S,
        name: `floor: local Deno.Command spawn, ${short}: p99`,
        value: r.lat.p99,
        unit: "ms",
        notes: `mean ${r.lat.mean.toFixed(2)} ms`,
      });
    });
    // setsid only where the element would use it (see elements/proc/launch.ts).
    const hows = setsidPath() ? ["setsid", "detached"] as const : ["detached"] as const;
    for (const how of hows) {
      await part(
        ctx,
        S,
        `floor: local spawn as the server does it (${how}), ${short}`,
        async () => {
          const r = await workJob<LatencyResult>(
            { mode: "spawn-latency", n: P.procN, warmup: P.procWarmup, serverLike: how },
            m.pin,
          );
          ctx.add({
            section: S,
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
    if (m.pin) continue; // rates need both cores
    for (const [where, srv] of targets) {
      const name = where === "direct"
        ? `library, other server over a direct connection, ${P.loops} in flight, unpinned`
        : `library, ${where} server, ${P.loops} in flight, unpinned`;
      await part(ctx, S, name, async () => {
        const r = await workJob<RateResult>({
          mode: "proc-rate",
          url: a.url,
          keyFile,
          direct: where === "direct",
          server: `/X${srv.id}`,
          loops: P.loops,
          seconds: P.rateS,
        });
        ctx.add({
          section: S,
          name: `${name}: starts/s`,
          value: r.perS,
          unit: "starts/s",
          goal: rateGoal,
          notes: `${P.loops} concurrent make→wait→scrub loops, each on its own anchor, one ` +
            `connection; ${r.ops} cycles in ${r.seconds.toFixed(1)} s after 0.5 s warm-up`,
        });
      });
    }
    await part(ctx, S, "floor: local spawn rate", async () => {
      const r = await workJob<RateResult>({
        mode: "spawn-rate",
        loops: P.loops,
        seconds: P.rateS,
      });
      ctx.add({
        section: S,
        name: `floor: local Deno.Command spawn, ${P.loops} in flight: starts/s`,
        value: r.perS,
        unit: "starts/s",
        notes: `${P.loops} concurrent loops in one Deno process; ${r.ops} in ` +
          `${r.seconds.toFixed(1)} s`,
      });
    });
    await c.stop();
  }
  await stopAll();
  // Peer: ssh.
  const ssh = await startPeer(
    ctx,
    { section: S, name: "peer: ssh /bin/true", unit: "ms" },
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
      section: S,
      name: "peer: ssh 127.0.0.1 /bin/true, new connection: p50",
      value: fresh.ms.p50,
      unit: "ms",
      notes: `${base}; ${fresh.how} (fewer runs: each is a full key exchange)`,
    });
    ctx.add({
      section: S,
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
      section: S,
      name: "peer: ssh /bin/true over an open connection (ControlMaster): p50",
      value: mux.ms.p50,
      unit: "ms",
      notes: `the closest ssh gets to the library's open connection: one new session ` +
        `(channel) on a master connection, plus the ssh client's own start; ${mux.how}`,
    });
    ctx.add({
      section: S,
      name: "peer: ssh /bin/true over an open connection (ControlMaster): p99",
      value: mux.ms.p99,
      unit: "ms",
      notes: `mean ${mux.ms.mean.toFixed(1)} ms`,
    });
    const rate = await commandRate([...ssh.muxArgv, "/bin/true"], P.loops, P.rateS);
    ctx.add({
      section: S,
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

/** Section 6. */
export const procStartSection: Section = { n: 6, title: TITLE, run: procStart };
