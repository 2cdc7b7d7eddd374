/**
 * Sections 6 and 7 of the benchmark: process start→exit of `/bin/true` through the
 * library (dialed, forwarded, and over a direct connection to the other server), starts/s
 * with 16 in flight, and stdout streaming through the library and `circuit stdout`; each
 * beside the local spawn floor and ssh.
 *
 * @module
 */

import { connect, readKeyFile } from "../mod.ts";
import { setsidPath } from "../elements/proc/launch.ts";
import { CLI, Cluster, type ServerProc, stopAll, waitConverged } from "./_cluster.ts";
import {
  commandRate,
  countBytes,
  part,
  type SectionContext,
  timeCommand,
  workJob,
} from "./_context.ts";
import { type SshPeer, startSshd } from "./_peers.ts";
import type { Goal } from "./_report.ts";
import type { LatencyResult, RateResult, StreamResult } from "./_work_client.ts";

/** Section titles. */
export const S6 = "6. Process start→exit of `/bin/true`";
/** Section titles. */
export const S7 = "7. Process stdout streaming (`head -c SIZE /dev/zero`)";

const MiB = 1024 * 1024;

/** The ungated drop probe: enough to outrun the 4 MiB bound, cheap to read. */
const PROBE = { size: "64M", bytes: 64 * MiB };

function params(quick: boolean) {
  return quick
    ? {
      procN: 100,
      procWarmup: 20,
      rateS: 2,
      loops: 16,
      sshRuns: 10,
      sshMuxRuns: 30,
      size: "256M",
      bytes: 256 * MiB,
    }
    : {
      procN: 300,
      procWarmup: 50,
      rateS: 4,
      loops: 16,
      sshRuns: 30,
      sshMuxRuns: 100,
      size: "1G",
      bytes: 1024 * MiB,
    };
}

async function sshPeer(dir: string): Promise<SshPeer | string> {
  try {
    return await startSshd(dir);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

// ---------------------------------------------------------------------------------------
// 6. Process start→exit

/**
 * Section 6: makeProc(/bin/true) → wait (→ scrub) latency, dialed and forwarded, pinned
 * and not; starts/s with 16 loops in flight; the local spawn floor; ssh.
 *
 * @param ctx the run's context
 */
export async function procStart(ctx: SectionContext): Promise<void> {
  const S = S6;
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
  const ssh = await sshPeer(`${tmp}/sshd-proc`);
  if (typeof ssh === "string") {
    ctx.add({
      section: S,
      name: "peer: ssh /bin/true (skipped)",
      value: null,
      unit: "ms",
      notes: `skipped: ${ssh}`,
    });
    return;
  }
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

// ---------------------------------------------------------------------------------------
// 7. stdout streaming

interface CpuSample {
  ticks: number;
  at: number;
}

function cpuSample(pid: number): CpuSample {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { ticks: Number(rest[11]) + Number(rest[12]), at: performance.now() };
}

/** CPU % (one core = 100) of a process between two samples, at 100 ticks/s. */
function cpuPercent(a: CpuSample, b: CpuSample): number {
  return (b.ticks - a.ticks) / 100 / ((b.at - a.at) / 1000) * 100;
}

/**
 * Section 7: stdout of `head -c SIZE /dev/zero` through the library (dialed and
 * forwarded) and `circuit stdout`, keyed, beside ssh and a local pipe.
 *
 * @param ctx the run's context
 */
export async function stdoutStream(ctx: SectionContext): Promise<void> {
  const S = S7;
  const P = params(ctx.quick);
  const { keyFile, tmp } = ctx;
  const mb = (bytes: number, s: number) => bytes / 1e6 / s;
  const sizeNote = `${P.size} = ${P.bytes} B; MB = 10^6 B; rate over first byte → last`;

  // Peer first, so its rate can be the goal.
  let sshRate: number | null = null;
  const ssh = await sshPeer(`${tmp}/sshd-stream`);
  if (typeof ssh === "string") {
    ctx.add({
      section: S,
      name: "peer: ssh 'head -c SIZE /dev/zero' (skipped)",
      value: null,
      unit: "MB/s",
      notes: `skipped: ${ssh}; the goal (≥ ssh's rate) is not judged`,
    });
  } else {
    await part(ctx, S, "peer: ssh", async () => {
      try {
        const t0 = performance.now();
        const child = new Deno.Command(ssh.argv[0], {
          args: [...ssh.argv.slice(1), `head -c ${P.size} /dev/zero`],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const [r, out] = await Promise.all([
          countBytes(child.stdout),
          new Response(child.stderr).text(),
        ]);
        const st = await child.status;
        if (st.code !== 0 || r.bytes !== P.bytes) {
          throw new Error(`ssh exited ${st.code} after ${r.bytes} bytes: ${out.trim()}`);
        }
        const s = (r.last - r.first) / 1000;
        sshRate = mb(r.bytes, s);
        const cipher = await sshCipher(ssh);
        ctx.add({
          section: S,
          name: `peer: ssh 127.0.0.1 'head -c ${P.size} /dev/zero'`,
          value: sshRate,
          unit: "MB/s",
          notes: `${sizeNote}; ${cipher}; read by the bench from the ssh client's stdout pipe; ` +
            `wall from spawn ${((r.last - t0) / 1000).toFixed(2)} s (includes the key ` +
            `exchange); unpinned`,
        });
      } finally {
        await ssh.closeMaster();
        await ssh.svc.stop();
      }
    });
  }
  const goal: Goal | undefined = sshRate !== null ? { op: ">=", value: round(sshRate) } : undefined;

  await using c = new Cluster(`${tmp}/stream`, keyFile);
  const a = await c.add();
  const b = await c.add(a.url);
  await waitConverged([a.url, b.url], 2, keyFile);
  const boundNote = "server output bound 4 MiB per stream (default --output-bound): with a " +
    "reader attached the writer waits for it, with none the oldest bytes are dropped";

  for (const [where, srv] of [["dialed", a], ["forwarded", b], ["direct", b]] as const) {
    const name = where === "direct"
      ? `library proc.output("stdout"), other server over a direct connection`
      : `library proc.output("stdout"), ${where} server`;
    await part(ctx, S, name, async () => {
      const before = [cpuSample(a.pid), cpuSample(b.pid)];
      const r = await workJob<StreamResult>({
        mode: "stdout",
        url: a.url,
        keyFile,
        direct: where === "direct",
        server: `/X${srv.id}`,
        size: P.size,
        bytes: P.bytes,
        gated: true,
      });
      const after = [cpuSample(a.pid), cpuSample(b.pid)];
      if (r.bytes !== P.bytes || r.dropped !== 0 || r.exitCode !== 0) {
        throw new Error(
          `read ${r.bytes} of ${P.bytes} bytes, ${r.dropped} dropped, exit ${r.exitCode}`,
        );
      }
      const cpu = [0, 1].map((i) => cpuPercent(before[i], after[i]));
      ctx.add({
        section: S,
        name,
        value: mb(r.bytes, r.streamS),
        unit: "MB/s",
        goal,
        notes: `${P.size} = ${P.bytes} B, MB = 10^6 B; keyed (HMAC + ChaCha20); reader opened ` +
          `right after makeProc; the process (\`sh -c 'echo ready; read x; exec head -c ` +
          `${P.size} /dev/zero'\`) is released through proc.stdin once "ready" came back ` +
          `through the reader, and the rate runs from that go-ahead to the last byte; byte ` +
          `count verified, 0 dropped; CPU while streaming (one core = 100 %): client ` +
          `${r.clientCpu.toFixed(0)} %, dialed server ${cpu[0].toFixed(0)} %` +
          (where !== "dialed" ? `, process's server ${cpu[1].toFixed(0)} %` : "") +
          (where === "forwarded" ? "; every call forwarded (direct: false)" : "") +
          `; ${boundNote}; client unpinned`,
      });
    });
    if (where === "direct") continue; // the route does not change what a stream holds
    const probe = `bytes dropped reading right after makeProc, ${where} server`;
    await part(ctx, S, probe, async () => {
      const r = await workJob<StreamResult>({
        mode: "stdout",
        url: a.url,
        keyFile,
        server: `/X${srv.id}`,
        size: PROBE.size,
        bytes: PROBE.bytes,
        gated: false,
      });
      if (r.bytes + r.dropped !== PROBE.bytes || r.exitCode !== 0) {
        throw new Error(`read ${r.bytes} + ${r.dropped} dropped of ${PROBE.bytes} bytes`);
      }
      ctx.add({
        section: S,
        name: probe,
        value: r.dropped,
        unit: "B",
        goal: { op: "<=", value: 0 },
        notes: `\`head -c ${PROBE.size} /dev/zero\` started directly, \`proc.output("stdout")\` ` +
          `opened as soon as makeProc returned: until that first reader attaches (at most ` +
          `--output-hold, default 5 s) a full stream pauses the process instead of dropping ` +
          `past the 4 MiB bound; read ${r.bytes} B at ` +
          `${mb(r.bytes, r.wallS).toFixed(0)} MB/s from makeProc`,
      });
    });
  }

  await part(ctx, S, "circuit stdout (CLI)", async () => {
    const r = await cliStdout(a, keyFile, P.size, P.bytes);
    ctx.add({
      section: S,
      name: "circuit stdout -d URL --hmac KEY PROC | byte counter, dialed server",
      value: mb(r.bytes, r.seconds),
      unit: "MB/s",
      goal,
      notes: `${P.size} through \`deno run -A cli.ts stdout\`; the process (\`sh -c 'echo ` +
        `ready; read x; exec head -c ${P.size} /dev/zero'\`) waits on stdin until the CLI has ` +
        `printed "ready" (so its reader is attached), then the rate is taken from the ` +
        `go-ahead to the CLI's EOF; byte count verified, no drop reported; CLI cold start ` +
        `${r.startMs.toFixed(0)} ms not included`,
    });
  });

  await part(ctx, S, "floor: local pipe", async () => {
    const child = new Deno.Command("/usr/bin/head", {
      args: ["-c", P.size, "/dev/zero"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const r = await countBytes(child.stdout);
    await child.status;
    if (r.bytes !== P.bytes) throw new Error(`read ${r.bytes} bytes`);
    ctx.add({
      section: S,
      name: `floor: local head -c ${P.size} /dev/zero → the bench's pipe reader`,
      value: mb(r.bytes, (r.last - r.first) / 1000),
      unit: "MB/s",
      notes: "the same byte counter the CLI and ssh figures use, reading a local pipe",
    });
  });
}

function round(v: number): number {
  return Math.round(v * 10) / 10;
}

/** The cipher ssh negotiates, from `ssh -G`. */
async function sshCipher(ssh: SshPeer): Promise<string> {
  const o = await new Deno.Command(ssh.argv[0], {
    args: ["-G", ...ssh.argv.slice(1)],
    stdout: "piped",
    stderr: "null",
  }).output();
  const first = /^ciphers (\S+)/m.exec(new TextDecoder().decode(o.stdout))?.[1]?.split(",")[0];
  return first ? `ssh's first-choice cipher ${first}` : "ssh's default cipher";
}

/**
 * Stream a gated process's stdout through `circuit stdout`: the process prints
 * "ready\n" and waits on stdin; once the CLI has printed it (its reader is attached), a
 * line on stdin releases `head`.
 */
async function cliStdout(
  srv: ServerProc,
  keyFile: string,
  size: string,
  bytes: number,
): Promise<{ bytes: number; seconds: number; startMs: number }> {
  const key = await readKeyFile(keyFile);
  await using client = await connect(srv.url, { key });
  const path = `/X${srv.id}/cli-stdout-${crypto.randomUUID().slice(0, 8)}`;
  const proc = await client.walk(path).makeProc({
    Path: "/bin/sh",
    Args: ["-c", `echo ready; read x; exec head -c ${size} /dev/zero`],
  });
  try {
    const t0 = performance.now();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, "stdout", "-d", srv.url, "--hmac", keyFile, path],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    let gate = 0, tReady = 0;
    const ready = 6; // "ready\n"
    const released = { p: Promise.resolve() };
    const r = await countBytes(child.stdout, (n) => {
      if (gate === 0 && n >= ready) {
        gate = performance.now();
        tReady = gate - t0;
        released.p = (async () => {
          const w = proc.stdin.getWriter();
          await w.write(new TextEncoder().encode("go\n"));
          await w.close();
        })();
      }
    });
    await released.p;
    const st = await child.status;
    const err = await stderr;
    if (st.code !== 0) throw new Error(`circuit stdout exited ${st.code}: ${err.trim()}`);
    if (r.bytes !== bytes + ready) {
      throw new Error(`circuit stdout printed ${r.bytes - ready} of ${bytes} bytes: ${err.trim()}`);
    }
    if (/dropped/.test(err)) throw new Error(`circuit stdout reported a drop: ${err.trim()}`);
    return { bytes, seconds: (r.last - gate) / 1000, startMs: tReady };
  } finally {
    await proc.scrub().catch(() => {});
  }
}
