/**
 * Measuring client for processes, output streams and channels, and for the Redis and
 * etcd peers, run as a subprocess so it can be pinned with `taskset` and so that the two
 * parties of a ping-pong are separate programs, as they would be on two hosts.
 *
 * Usage: `deno run -A bench/_work_client.ts '<JSON WorkJob>'`. Prints one JSON line,
 * the job's result, on stdout.
 *
 * @module
 */

import { type Client, connect, readKeyFile } from "../mod.ts";
import { Resp } from "./_resp.ts";
import { summarize, type Summary } from "./_stats.ts";
import { setsidPath } from "../elements/proc/launch.ts";

/** What to measure. */
export type WorkJob =
  | ProcLatencyJob
  | ProcRateJob
  | SpawnLatencyJob
  | SpawnRateJob
  | StdoutJob
  | ChanEchoJob
  | ChanPingPongJob
  | ChanFloodJob
  | RedisEchoJob
  | RedisPingPongJob
  | RedisFloodJob
  | EtcdWatchJob;

/** The dial of a library job. */
interface Dial {
  /** Server URL. */
  url: string;
  /** Key file of a keyed cluster. */
  keyFile?: string;
  /**
   * Reach the other servers over direct connections (the library's default), made before
   * the job starts; false or absent forwards every call through the dialed server.
   */
  direct?: boolean;
}

/** makeProc(/bin/true) → wait → scrub, one at a time. */
export interface ProcLatencyJob extends Dial {
  mode: "proc-latency";
  /** Server path `/X…` where the processes run. */
  server: string;
  /** Timed cycles. */
  n: number;
  /** Untimed cycles first. */
  warmup: number;
}

/** `loops` concurrent make → wait → scrub loops, each on its own anchor, for `seconds`. */
export interface ProcRateJob extends Dial {
  mode: "proc-rate";
  /** Server path `/X…`. */
  server: string;
  /** Concurrent loops. */
  loops: number;
  /** How long to run, in seconds (after a short warm-up). */
  seconds: number;
}

/** `new Deno.Command("/bin/true").output()` one at a time. */
export interface SpawnLatencyJob {
  mode: "spawn-latency";
  /** Timed spawns. */
  n: number;
  /** Untimed spawns first. */
  warmup: number;
  /**
   * Spawn as the proc element does, with stdin, stdout and stderr piped and the child in
   * its own process group, then await the status: `setsid /bin/true` (what the element
   * does where the host has setsid) or `detached: true` (its fallback).
   */
  serverLike?: "setsid" | "detached";
}

/** `loops` concurrent local spawn loops for `seconds`. */
export interface SpawnRateJob {
  mode: "spawn-rate";
  /** Concurrent loops. */
  loops: number;
  /** How long, in seconds. */
  seconds: number;
}

/**
 * makeProc(`head -c SIZE /dev/zero`) and read its stdout to the end, opening the reader
 * right after makeProc returns. Gated: the process is
 * `sh -c 'echo ready; read x; exec head …'`, and "go" goes to its stdin only once
 * "ready" has come back through the reader, so the reader is surely attached.
 */
export interface StdoutJob extends Dial {
  mode: "stdout";
  /** Server path `/X…`. */
  server: string;
  /** `head -c` size argument, e.g. `1G`. */
  size: string;
  /** The bytes that size means. */
  bytes: number;
  /** Hold `head` until the reader is attached. */
  gated: boolean;
}

/** Ping-pong echo party: receive from `from`, send it to `to`, until `from` is closed. */
export interface ChanEchoJob extends Dial {
  mode: "chan-echo";
  /** Channel path to receive from. */
  from: string;
  /** Channel path to send to. */
  to: string;
}

/** Ping-pong measuring party: send to `ping`, receive from `pong`; then close `ping`. */
export interface ChanPingPongJob extends Dial {
  mode: "chan-pingpong";
  /** Channel path to send to. */
  ping: string;
  /** Channel path to receive from. */
  pong: string;
  /** Timed round trips. */
  n: number;
  /** Untimed round trips first. */
  warmup: number;
  /** Message size in bytes. */
  size: number;
}

/** Flood a channel: senders, receivers or both, from `startAt` (epoch ms). */
export interface ChanFloodJob extends Dial {
  mode: "chan-flood";
  /** The channel. */
  chan: string;
  /** Which side(s) this process plays. */
  role: "send" | "recv" | "both";
  /** Messages in all. */
  count: number;
  /** Concurrent senders (and as many receivers). */
  workers: number;
  /** Message size in bytes. */
  size: number;
  /** Untimed messages first, sent and received by this process alone, before `startAt`. */
  warmup: number;
  /** Start at this time (`performance.timeOrigin + performance.now()`), ms. */
  startAt: number;
}

/** Redis ping-pong echo party: BRPOP `from`, LPUSH to `to`, until it pops `STOP`. */
export interface RedisEchoJob {
  mode: "redis-echo";
  /** Redis port. */
  port: number;
  /** List to pop from. */
  from: string;
  /** List to push to. */
  to: string;
}

/** Redis ping-pong measuring party: LPUSH `ping`, BRPOP `pong`. */
export interface RedisPingPongJob {
  mode: "redis-pingpong";
  /** Redis port. */
  port: number;
  /** List to push to. */
  ping: string;
  /** List to pop from. */
  pong: string;
  /** Timed round trips. */
  n: number;
  /** Untimed first. */
  warmup: number;
  /** Message size in bytes. */
  size: number;
}

/** Flood a Redis list: LPUSH senders and BRPOP receivers, one connection each. */
export interface RedisFloodJob {
  mode: "redis-flood";
  /** Redis port. */
  port: number;
  /** The list. */
  list: string;
  /** Which side(s) this process plays. */
  role: "send" | "recv" | "both";
  /** Messages in all. */
  count: number;
  /** Concurrent senders (and as many receivers). */
  workers: number;
  /** Message size in bytes. */
  size: number;
  /** Untimed messages first, sent and received by this process alone, before `startAt`. */
  warmup: number;
  /** Start at this time (epoch ms). */
  startAt: number;
}

/** etcd: PUT a key, time until its watch event arrives (HTTP/JSON gateway). */
export interface EtcdWatchJob {
  mode: "etcd-watch";
  /** `http://127.0.0.1:PORT`. */
  endpoint: string;
  /** Timed puts. */
  n: number;
  /** Untimed first. */
  warmup: number;
  /** Value size in bytes. */
  size: number;
}

/** A latency result. */
export interface LatencyResult {
  /** Per-operation latency, in the job's unit (ms for processes, µs for messages). */
  lat: Summary;
  /** A second latency series, when the job has one (e.g. the full proc cycle). */
  lat2?: Summary;
  /** Breakdown medians, when the job has them. */
  parts?: Record<string, number>;
  /** CPUs this process may run on. */
  cpus: string;
}

/** A rate result. */
export interface RateResult {
  /** Operations completed. */
  ops: number;
  /** Seconds. */
  seconds: number;
  /** Operations per second. */
  perS: number;
  /** Absolute start and end (epoch ms) for flood jobs. */
  start?: number;
  /** End (epoch ms) of the last operation. */
  end?: number;
  /** Bytes received, for flood receivers. */
  bytes?: number;
  /** CPUs this process may run on. */
  cpus: string;
}

/** A stream result. */
export interface StreamResult {
  /** Bytes read. */
  bytes: number;
  /** Bytes the server dropped before the reader attached. */
  dropped: number;
  /** makeProc → last byte, in seconds. */
  wallS: number;
  /** First byte (gated: the go-ahead) → last byte, in seconds. */
  streamS: number;
  /** Exit code of `head`. */
  exitCode: number | null;
  /** This client's CPU use while streaming, % of one core. */
  clientCpu: number;
  /** CPUs this process may run on. */
  cpus: string;
}

const now = () => performance.timeOrigin + performance.now();

function allowedCpus(): string {
  try {
    return /Cpus_allowed_list:\s*(\S+)/.exec(Deno.readTextFileSync("/proc/self/status"))?.[1] ??
      "?";
  } catch {
    return "?";
  }
}

async function dialJob(d: Dial): Promise<Client> {
  const key = d.keyFile ? await readKeyFile(d.keyFile) : undefined;
  const client = await connect(d.url, { key, direct: d.direct ?? false });
  if (d.direct) {
    // One call to each other server starts its direct dial; wait until all are up.
    const others = (await client.walk("/").ls()).map((e) => e.path).filter((p) =>
      p !== client.server
    );
    await Promise.all(others.map((p) => client.walk(p).peek()));
    for (let i = 0; i < 300 && client.directServers.length < others.length; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    if (client.directServers.length < others.length) {
      throw new Error(`no direct connection to ${others.join(", ")} after 3 s`);
    }
  }
  return client;
}

async function sleepUntil(t: number): Promise<void> {
  const ms = t - now();
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------
// Processes

async function procLatency(job: ProcLatencyJob): Promise<LatencyResult> {
  await using client = await dialJob(job);
  const makeWait: number[] = [], cycle: number[] = [];
  const mk: number[] = [], wt: number[] = [], sc: number[] = [];
  for (let i = 0; i < job.warmup + job.n; i++) {
    const timed = i >= job.warmup;
    const anchor = client.walk(`${job.server}/${timed ? "pstart" : "pwarm"}-${i}`);
    const t0 = performance.now();
    const proc = await anchor.makeProc({ Path: "/bin/true" });
    const t1 = performance.now();
    const st = await proc.wait();
    const t2 = performance.now();
    await proc.scrub();
    const t3 = performance.now();
    if (st.Phase !== "exited" || st.ExitCode !== 0) {
      throw new Error(`/bin/true ended ${JSON.stringify(st)}`);
    }
    if (timed) {
      makeWait.push(t2 - t0);
      cycle.push(t3 - t0);
      mk.push(t1 - t0);
      wt.push(t2 - t1);
      sc.push(t3 - t2);
    }
  }
  return {
    lat: summarize(makeWait),
    lat2: summarize(cycle),
    parts: {
      makeProc: summarize(mk).p50,
      wait: summarize(wt).p50,
      scrub: summarize(sc).p50,
    },
    cpus: allowedCpus(),
  };
}

async function procRate(job: ProcRateJob): Promise<RateResult> {
  await using client = await dialJob(job);
  const loop = async (w: number, until: number, count: { n: number }) => {
    const anchor = client.walk(`${job.server}/prate-${w}`);
    while (performance.now() < until) {
      const proc = await anchor.makeProc({ Path: "/bin/true" });
      const st = await proc.wait();
      await proc.scrub();
      if (st.ExitCode !== 0) throw new Error(`/bin/true ended ${JSON.stringify(st)}`);
      count.n++;
    }
  };
  const warm = { n: 0 };
  const tw = performance.now() + 500;
  await Promise.all(Array.from({ length: job.loops }, (_, w) => loop(w, tw, warm)));
  const count = { n: 0 };
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: job.loops }, (_, w) => loop(w, t0 + job.seconds * 1000, count)),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { ops: count.n, seconds, perS: count.n / seconds, cpus: allowedCpus() };
}

async function spawnOnce(): Promise<void> {
  const o = await new Deno.Command("/bin/true").output();
  if (o.code !== 0) throw new Error(`/bin/true exited ${o.code}`);
}

async function spawnLatency(job: SpawnLatencyJob): Promise<LatencyResult> {
  const ms: number[] = [], sync: number[] = [];
  for (let i = 0; i < job.warmup + job.n; i++) {
    const t = performance.now();
    if (job.serverLike) {
      const setsid = job.serverLike === "setsid" ? setsidPath() : null;
      if (job.serverLike === "setsid" && !setsid) throw new Error("no setsid on this host");
      const child = new Deno.Command(setsid ?? "/bin/true", {
        args: setsid ? ["/bin/true"] : [],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
        detached: !setsid,
      }).spawn();
      if (i >= job.warmup) sync.push(performance.now() - t);
      const drain = Promise.all([child.stdout.cancel(), child.stderr.cancel()]);
      const st = await child.status;
      await drain;
      await child.stdin.abort().catch(() => {});
      if (st.code !== 0) throw new Error(`/bin/true exited ${st.code}`);
    } else {
      await spawnOnce();
    }
    if (i >= job.warmup) ms.push(performance.now() - t);
  }
  return {
    lat: summarize(ms),
    ...(job.serverLike ? { parts: { spawnCall: summarize(sync).p50 } } : {}),
    cpus: allowedCpus(),
  };
}

async function spawnRate(job: SpawnRateJob): Promise<RateResult> {
  let n = 0;
  const t0 = performance.now(), until = t0 + job.seconds * 1000;
  await Promise.all(Array.from({ length: job.loops }, async () => {
    while (performance.now() < until) {
      await spawnOnce();
      n++;
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  return { ops: n, seconds, perS: n / seconds, cpus: allowedCpus() };
}

/** CPU time of this process so far, in seconds (utime + stime at 100 ticks/s). */
function selfCpuS(): number {
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(rest[11]) + Number(rest[12])) / 100;
  } catch {
    return NaN;
  }
}

async function stdout(job: StdoutJob): Promise<StreamResult> {
  await using client = await dialJob(job);
  const cpu0 = selfCpuS();
  const anchor = client.walk(`${job.server}/stdout-${crypto.randomUUID().slice(0, 8)}`);
  const READY = 6; // "ready\n"
  const t0 = performance.now();
  const proc = await anchor.makeProc(
    job.gated
      ? { Path: "/bin/sh", Args: ["-c", `echo ready; read x; exec head -c ${job.size} /dev/zero`] }
      : { Path: "/usr/bin/head", Args: ["-c", job.size, "/dev/zero"] },
  );
  // Attach at once: bytes written before a reader attaches are dropped past the bound.
  const out = proc.output("stdout");
  const reader = out.readable.getReader();
  let got = 0, tFirst = 0, go: Promise<void> | null = null;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (got === 0 && !job.gated) tFirst = performance.now();
    got += value.length;
    if (job.gated && !go && got >= READY) {
      tFirst = performance.now();
      go = (async () => {
        const w = proc.stdin.getWriter();
        await w.write(new TextEncoder().encode("go\n"));
        await w.close();
      })();
    }
  }
  const tEnd = performance.now();
  await go;
  const clientCpu = (selfCpuS() - cpu0) / ((tEnd - t0) / 1000) * 100;
  const dropped = await out.dropped;
  const st = await proc.wait();
  await proc.scrub();
  return {
    bytes: job.gated ? got - READY : got,
    dropped,
    wallS: (tEnd - t0) / 1000,
    streamS: (tEnd - tFirst) / 1000,
    exitCode: st.ExitCode,
    clientCpu,
    cpus: allowedCpus(),
  };
}

// ---------------------------------------------------------------------------------------
// Channels

async function chanEcho(job: ChanEchoJob): Promise<RateResult> {
  await using client = await dialJob(job);
  const from = client.walk(job.from).chan(), to = client.walk(job.to).chan();
  let n = 0;
  const t0 = performance.now();
  for await (const m of from) {
    await to.send(m);
    n++;
  }
  const seconds = (performance.now() - t0) / 1000;
  return { ops: n, seconds, perS: n / seconds, cpus: allowedCpus() };
}

async function chanPingPong(job: ChanPingPongJob): Promise<LatencyResult> {
  await using client = await dialJob(job);
  const ping = client.walk(job.ping).chan(), pong = client.walk(job.pong).chan();
  const msg = new Uint8Array(job.size).fill(0x70);
  const us: number[] = [];
  try {
    for (let i = 0; i < job.warmup + job.n; i++) {
      const t = performance.now();
      // The receive is issued first so the echo's send finds it waiting.
      const back = pong.recv();
      back.catch(() => {}); // awaited below; a failed send must not leave it unhandled
      await ping.send(msg);
      const m = await back;
      if (i >= job.warmup) us.push((performance.now() - t) * 1000);
      if (m.length !== job.size) throw new Error(`pong of ${m.length} bytes`);
    }
  } finally {
    await ping.close().catch(() => {});
  }
  return { lat: summarize(us), cpus: allowedCpus() };
}

/**
 * Run `count` sends and `count` receives over `workers` loops each (either may be 0);
 * the bytes received and when the last operation ended.
 */
async function floodLoops(
  o: {
    sends: number;
    recvs: number;
    workers: number;
    send: (worker: number) => Promise<unknown>;
    recv: (worker: number) => Promise<Uint8Array>;
  },
): Promise<{ bytes: number; last: number }> {
  let toSend = o.sends, toRecv = o.recvs, bytes = 0, last = 0;
  const sender = async (w: number) => {
    while (toSend > 0) {
      toSend--;
      await o.send(w);
      last = now();
    }
  };
  const receiver = async (w: number) => {
    while (toRecv > 0) {
      toRecv--;
      const m = await o.recv(w); // not `bytes += await …`: that reads bytes before awaiting
      bytes += m.length;
      last = now();
    }
  };
  const ws: Promise<void>[] = [];
  for (let i = 0; i < o.workers; i++) {
    if (o.sends > 0) ws.push(sender(i));
    if (o.recvs > 0) ws.push(receiver(i));
  }
  await Promise.all(ws);
  return { bytes, last };
}

/** What a flood job's parts share: its role, counts and start time. */
interface FloodShape {
  role: "send" | "recv" | "both";
  count: number;
  workers: number;
  warmup: number;
  startAt: number;
}

/** A flood's operations, one per loop. */
interface FloodOps {
  send: (worker: number) => Promise<unknown>;
  recv: (worker: number) => Promise<Uint8Array>;
}

/** The untimed warm-up: `warmup` sends and receives through `ops` (this process alone). */
async function floodWarmup(job: FloodShape, ops: FloodOps): Promise<void> {
  await floodLoops({ sends: job.warmup, recvs: job.warmup, workers: job.workers, ...ops });
}

/** The timed part: from `startAt`, this process's side of `count` messages. */
async function floodTimed(job: FloodShape, ops: FloodOps): Promise<RateResult> {
  await sleepUntil(job.startAt);
  const start = now();
  const { bytes, last } = await floodLoops({
    sends: job.role === "recv" ? 0 : job.count,
    recvs: job.role === "send" ? 0 : job.count,
    workers: job.workers,
    ...ops,
  });
  return floodResult(job.count, start, last, bytes);
}

async function chanFlood(job: ChanFloodJob): Promise<RateResult> {
  await using client = await dialJob(job);
  const msg = new Uint8Array(job.size).fill(0x66);
  if (job.warmup > 0) {
    // The same work on a channel of this process's own, so that neither this process's
    // code nor the server's is cold when the clock starts.
    const warm = await client.walk(`${job.chan}-warm-${job.role}`).makeChan(1024);
    await floodWarmup(job, { send: () => warm.send(msg), recv: () => warm.recv() });
    await warm.scrub();
  }
  const ch = client.walk(job.chan).chan();
  return await floodTimed(job, { send: () => ch.send(msg), recv: () => ch.recv() });
}

// ---------------------------------------------------------------------------------------
// Redis

const STOP = "STOP";

async function redisEcho(job: RedisEchoJob): Promise<RateResult> {
  const r = await Resp.connect(job.port);
  let n = 0;
  const t0 = performance.now();
  try {
    for (;;) {
      const v = await r.call("BRPOP", job.from, "0") as Uint8Array[];
      const m = v[1];
      if (m.length === STOP.length && new TextDecoder().decode(m) === STOP) break;
      await r.call("LPUSH", job.to, m);
      n++;
    }
  } finally {
    r.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { ops: n, seconds, perS: n / seconds, cpus: allowedCpus() };
}

async function redisPingPong(job: RedisPingPongJob): Promise<LatencyResult> {
  const r = await Resp.connect(job.port);
  const msg = new Uint8Array(job.size).fill(0x70);
  const us: number[] = [];
  try {
    for (let i = 0; i < job.warmup + job.n; i++) {
      const t = performance.now();
      await r.call("LPUSH", job.ping, msg);
      const v = await r.call("BRPOP", job.pong, "0") as Uint8Array[];
      if (i >= job.warmup) us.push((performance.now() - t) * 1000);
      if (v[1].length !== job.size) throw new Error(`pong of ${v[1].length} bytes`);
    }
  } finally {
    await r.call("LPUSH", job.ping, STOP).catch(() => {});
    r.close();
  }
  return { lat: summarize(us), cpus: allowedCpus() };
}

/**
 * `workers` connections for LPUSH and as many for BRPOP on `list` (BRPOP blocks its
 * connection), each side only when `sides` asks for it.
 */
async function redisLoops(
  port: number,
  workers: number,
  list: string,
  msg: Uint8Array,
  sides: { send: boolean; recv: boolean },
) {
  const tx: Resp[] = [], rx: Resp[] = [];
  for (let i = 0; i < workers; i++) {
    if (sides.send) tx.push(await Resp.connect(port));
    if (sides.recv) rx.push(await Resp.connect(port));
  }
  return {
    send: (w: number) => tx[w].call("LPUSH", list, msg),
    recv: async (w: number) => ((await rx[w].call("BRPOP", list, "0")) as Uint8Array[])[1],
    close: () => {
      for (const c of [...tx, ...rx]) c.close();
    },
  };
}

async function redisFlood(job: RedisFloodJob): Promise<RateResult> {
  const msg = new Uint8Array(job.size).fill(0x66);
  if (job.warmup > 0) {
    // The same work on a list of this process's own: warm code when the clock starts.
    const warm = await redisLoops(job.port, job.workers, `${job.list}-warm-${job.role}`, msg, {
      send: true,
      recv: true,
    });
    try {
      await floodWarmup(job, warm);
    } finally {
      warm.close();
    }
  }
  const loops = await redisLoops(job.port, job.workers, job.list, msg, {
    send: job.role !== "recv",
    recv: job.role !== "send",
  });
  try {
    return await floodTimed(job, loops);
  } finally {
    loops.close();
  }
}

// ---------------------------------------------------------------------------------------
// etcd

function b64(s: string): string {
  return btoa(s);
}

async function etcdWatch(job: EtcdWatchJob): Promise<LatencyResult> {
  const key = `bench-${crypto.randomUUID().slice(0, 8)}`;
  const ac = new AbortController();
  const res = await fetch(`${job.endpoint}/v3/watch`, {
    method: "POST",
    body: JSON.stringify({ create_request: { key: b64(key) } }),
    signal: ac.signal,
  });
  if (!res.ok || !res.body) throw new Error(`etcd watch: HTTP ${res.status}`);
  const lines = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const events: string[] = [];
  const hooks: { waiter: (() => void) | null; created: () => void } = {
    waiter: null,
    created: () => {},
  };
  const isCreated = new Promise<void>((r) => (hooks.created = r));
  const pump = (async () => {
    try {
      for (;;) {
        const { done, value } = await lines.read();
        if (done) return;
        buf += value;
        for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line) continue;
          const msg = JSON.parse(line) as {
            result?: { created?: boolean; events?: { kv: { value: string } }[] };
          };
          if (msg.result?.created) hooks.created();
          for (const e of msg.result?.events ?? []) events.push(atob(e.kv.value));
          if (events.length && hooks.waiter) {
            const w = hooks.waiter;
            hooks.waiter = null;
            w();
          }
        }
      }
    } catch { /* aborted */ }
  })();
  await isCreated;
  const pad = "x".repeat(Math.max(0, job.size - 12));
  const us: number[] = [], putUs: number[] = [];
  try {
    for (let i = 0; i < job.warmup + job.n; i++) {
      const value = `${String(i).padStart(12, "0")}${pad}`;
      const t = performance.now();
      const seen = new Promise<void>((r) => (hooks.waiter = r));
      const put = await fetch(`${job.endpoint}/v3/kv/put`, {
        method: "POST",
        body: JSON.stringify({ key: b64(key), value: b64(value) }),
      });
      await put.arrayBuffer();
      if (!put.ok) throw new Error(`etcd put: HTTP ${put.status}`);
      const tPut = performance.now();
      if (!events.length) await seen;
      const tSeen = performance.now();
      const got = events.shift()!;
      if (got !== value) throw new Error(`etcd watch saw another value`);
      if (i >= job.warmup) {
        us.push((tSeen - t) * 1000);
        putUs.push((tPut - t) * 1000);
      }
    }
  } finally {
    ac.abort();
    await pump;
  }
  return { lat: summarize(us), lat2: summarize(putUs), cpus: allowedCpus() };
}

// ---------------------------------------------------------------------------------------

/**
 * Run one job.
 *
 * @param job what to measure
 * @returns its result
 */
export function runJob(job: WorkJob): Promise<unknown> {
  switch (job.mode) {
    case "proc-latency":
      return procLatency(job);
    case "proc-rate":
      return procRate(job);
    case "spawn-latency":
      return spawnLatency(job);
    case "spawn-rate":
      return spawnRate(job);
    case "stdout":
      return stdout(job);
    case "chan-echo":
      return chanEcho(job);
    case "chan-pingpong":
      return chanPingPong(job);
    case "chan-flood":
      return chanFlood(job);
    case "redis-echo":
      return redisEcho(job);
    case "redis-pingpong":
      return redisPingPong(job);
    case "redis-flood":
      return redisFlood(job);
    case "etcd-watch":
      return etcdWatch(job);
  }
}

if (import.meta.main) {
  const job = JSON.parse(Deno.args[0]) as WorkJob;
  const result = await runJob(job);
  Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(result) + "\n"));
  Deno.exit(0);
}

/** The result of a flood: `count` operations between `start` and `last` (ms). */
function floodResult(count: number, start: number, last: number, bytes: number) {
  const seconds = (last - start) / 1000;
  return {
    ops: count,
    seconds,
    perS: count / seconds,
    start,
    end: last,
    bytes,
    cpus: allowedCpus(),
  };
}
