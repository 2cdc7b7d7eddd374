/**
 * Section 7 of the benchmark: stdout streaming of `head -c SIZE /dev/zero` through the
 * library (dialed and forwarded) and `circuit stdout`, beside ssh and a local pipe.
 *
 * @module
 */

import { connect, readKeyFile } from "../../mod.ts";
import { CLI, Cluster, type ServerProc, waitConverged } from "../_cluster.ts";
import { countBytes, part, type Section, type SectionContext, workJob } from "../_context.ts";
import { type SshPeer, startPeer, startSshd } from "../_peers.ts";
import { cpuPercent, sampleProc } from "../_proc.ts";
import type { Goal } from "../_report.ts";
import type { StreamResult } from "../_work_client.ts";

const TITLE = "7. Process stdout streaming (`head -c SIZE /dev/zero`)";

const MiB = 1024 * 1024;

/** The ungated drop probe: enough to outrun the 4 MiB bound, cheap to read. */
const PROBE = { size: "64M", bytes: 64 * MiB };

function params(quick: boolean) {
  return quick ? { size: "256M", bytes: 256 * MiB } : { size: "1G", bytes: 1024 * MiB };
}

type Params = ReturnType<typeof params>;

/** What the section's steps share once the cluster is up. */
interface StreamRun {
  ctx: SectionContext;
  P: Params;
  keyFile: string;
  /** The dialed server. */
  a: ServerProc;
  /** The second server, joined to the first. */
  b: ServerProc;
  /** ≥ ssh's rate, when ssh was measured. */
  goal: Goal | undefined;
}

/** MB/s (MB = 10^6 B). */
const mb = (bytes: number, s: number) => bytes / 1e6 / s;

/** How big the stream is, for the notes. */
const sizeNote = (P: Params) =>
  `${P.size} = ${P.bytes} B; MB = 10^6 B; rate over first byte → last`;

const BOUND_NOTE = "server output bound 4 MiB per stream (default --output-bound): with a " +
  "reader attached the writer waits for it, with none the oldest bytes are dropped";

/**
 * The peer, first so its rate can be the goal: `ssh 127.0.0.1 'head -c SIZE /dev/zero'`.
 *
 * @returns ssh's rate in MB/s, or null when it was not measured
 */
async function sshStream(ctx: SectionContext, P: Params): Promise<number | null> {
  let sshRate: number | null = null;
  const ssh = await startPeer(ctx, {
    section: TITLE,
    name: "peer: ssh 'head -c SIZE /dev/zero'",
    unit: "MB/s",
    suffix: "; the goal (≥ ssh's rate) is not judged",
  }, () => startSshd(`${ctx.tmp}/sshd-stream`));
  if (!ssh) return null;
  await part(ctx, TITLE, "peer: ssh", async () => {
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
        section: TITLE,
        name: `peer: ssh 127.0.0.1 'head -c ${P.size} /dev/zero'`,
        value: sshRate,
        unit: "MB/s",
        notes: `${sizeNote(P)}; ${cipher}; read by the bench from the ssh client's stdout ` +
          `pipe; wall from spawn ${((r.last - t0) / 1000).toFixed(2)} s (includes the key ` +
          `exchange); unpinned`,
      });
    } finally {
      await ssh.closeMaster();
      await ssh.svc.stop();
    }
  });
  return sshRate;
}

/** `proc.output("stdout")` through the library, gated, with both servers' CPU. */
async function libraryStream(
  run: StreamRun,
  where: "dialed" | "forwarded" | "direct",
  srv: ServerProc,
): Promise<void> {
  const { ctx, P, a, b } = run;
  const name = where === "direct"
    ? `library proc.output("stdout"), other server over a direct connection`
    : `library proc.output("stdout"), ${where} server`;
  await part(ctx, TITLE, name, async () => {
    const before = [sampleProc(a.pid), sampleProc(b.pid)];
    const r = await workJob<StreamResult>({
      mode: "stdout",
      url: a.url,
      keyFile: run.keyFile,
      direct: where === "direct",
      server: `/X${srv.id}`,
      size: P.size,
      bytes: P.bytes,
      gated: true,
    });
    const after = [sampleProc(a.pid), sampleProc(b.pid)];
    if (r.bytes !== P.bytes || r.dropped !== 0 || r.exitCode !== 0) {
      throw new Error(
        `read ${r.bytes} of ${P.bytes} bytes, ${r.dropped} dropped, exit ${r.exitCode}`,
      );
    }
    const cpu = [0, 1].map((i) => cpuPercent(before[i], after[i]));
    ctx.add({
      section: TITLE,
      name,
      value: mb(r.bytes, r.streamS),
      unit: "MB/s",
      goal: run.goal,
      notes: `${P.size} = ${P.bytes} B, MB = 10^6 B; keyed (HMAC + ChaCha20); reader opened ` +
        `right after makeProc; the process (\`sh -c 'echo ready; read x; exec head -c ` +
        `${P.size} /dev/zero'\`) is released through proc.stdin once "ready" came back ` +
        `through the reader, and the rate runs from that go-ahead to the last byte; byte ` +
        `count verified, 0 dropped; CPU while streaming (one core = 100 %): client ` +
        `${r.clientCpu.toFixed(0)} %, dialed server ${cpu[0].toFixed(0)} %` +
        (where !== "dialed" ? `, process's server ${cpu[1].toFixed(0)} %` : "") +
        (where === "forwarded" ? "; every call forwarded (direct: false)" : "") +
        `; ${BOUND_NOTE}; client unpinned`,
    });
  });
}

/** Bytes dropped when the reader attaches right after makeProc, ungated. */
async function dropProbe(
  run: StreamRun,
  where: "dialed" | "forwarded",
  srv: ServerProc,
): Promise<void> {
  const { ctx } = run;
  const probe = `bytes dropped reading right after makeProc, ${where} server`;
  await part(ctx, TITLE, probe, async () => {
    const r = await workJob<StreamResult>({
      mode: "stdout",
      url: run.a.url,
      keyFile: run.keyFile,
      server: `/X${srv.id}`,
      size: PROBE.size,
      bytes: PROBE.bytes,
      gated: false,
    });
    if (r.bytes + r.dropped !== PROBE.bytes || r.exitCode !== 0) {
      throw new Error(`read ${r.bytes} + ${r.dropped} dropped of ${PROBE.bytes} bytes`);
    }
    ctx.add({
      section: TITLE,
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

/** `circuit stdout` piped into the bench's byte counter. */
async function cliStream(run: StreamRun): Promise<void> {
  const { ctx, P } = run;
  await part(ctx, TITLE, "circuit stdout (CLI)", async () => {
    const r = await cliStdout(run.a, run.keyFile, P.size, P.bytes);
    ctx.add({
      section: TITLE,
      name: "circuit stdout -d URL --hmac KEY PROC | byte counter, dialed server",
      value: mb(r.bytes, r.seconds),
      unit: "MB/s",
      goal: run.goal,
      notes: `${P.size} through \`deno run -A cli.ts stdout\`; the process (\`sh -c 'echo ` +
        `ready; read x; exec head -c ${P.size} /dev/zero'\`) waits on stdin until the CLI has ` +
        `printed "ready" (so its reader is attached), then the rate is taken from the ` +
        `go-ahead to the CLI's EOF; byte count verified, no drop reported; CLI cold start ` +
        `${r.startMs.toFixed(0)} ms not included`,
    });
  });
}

/** The floor: a local `head` into the same byte counter. */
async function pipeFloor(ctx: SectionContext, P: Params): Promise<void> {
  await part(ctx, TITLE, "floor: local pipe", async () => {
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
      section: TITLE,
      name: `floor: local head -c ${P.size} /dev/zero → the bench's pipe reader`,
      value: mb(r.bytes, (r.last - r.first) / 1000),
      unit: "MB/s",
      notes: "the same byte counter the CLI and ssh figures use, reading a local pipe",
    });
  });
}

/**
 * Section 7: stdout of `head -c SIZE /dev/zero` through the library (dialed and
 * forwarded) and `circuit stdout`, keyed, beside ssh and a local pipe.
 *
 * @param ctx the run's context
 */
async function stdoutStream(ctx: SectionContext): Promise<void> {
  const P = params(ctx.quick);
  const { keyFile, tmp } = ctx;
  const sshRate = await sshStream(ctx, P);
  const goal: Goal | undefined = sshRate !== null ? { op: ">=", value: round(sshRate) } : undefined;
  await using c = new Cluster(`${tmp}/stream`, keyFile);
  const a = await c.add();
  const b = await c.add(a.url);
  await waitConverged([a.url, b.url], 2, keyFile);
  const run: StreamRun = { ctx, P, keyFile, a, b, goal };
  for (const [where, srv] of [["dialed", a], ["forwarded", b], ["direct", b]] as const) {
    await libraryStream(run, where, srv);
    // The route does not change what a stream holds: no probe over a direct connection.
    if (where !== "direct") await dropProbe(run, where, srv);
  }
  await cliStream(run);
  await pipeFloor(ctx, P);
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

/** Section 7. */
export const stdoutSection: Section = { n: 7, title: TITLE, run: stdoutStream };
