/**
 * Section 8 of the benchmark: channels through the library, keyed: ping-pong round trips
 * across two servers through unbuffered channels, and pipelined messages/s through a
 * CAP 1024 channel; beside Redis LPUSH/BRPOP and etcd put→watch.
 *
 * @module
 */

import { type Client, connect, readKeyFile } from "../../mod.ts";
import {
  Cluster,
  denoArgv,
  ROOT,
  run,
  type ServerProc,
  type Service,
  spawnService,
  waitConverged,
} from "../_cluster.ts";
import { summarize, type Summary } from "../_stats.ts";
import { part, type Section, type SectionContext, workJob } from "../_context.ts";
import { cpuSeconds } from "../_proc.ts";
import {
  type RedisPeer,
  removeScratch,
  scratchDir,
  startEtcd,
  startPeer,
  startRedis,
} from "../_peers.ts";
import type { LatencyResult, RateResult, WorkJob } from "../_work_client.ts";

const TITLE = "8. Channels (library, keyed)";

function params(quick: boolean) {
  return quick
    ? {
      pingN: 300,
      pingWarmup: 50,
      flood: { 64: 20_000, 4096: 4000 },
      floodWarmup: { 64: 5000, 4096: 1000 },
      etcdN: 100,
      workers: 64,
    }
    : {
      pingN: 1000,
      pingWarmup: 100,
      flood: { 64: 200_000, 4096: 30_000 },
      floodWarmup: { 64: 20_000, 4096: 4000 },
      etcdN: 300,
      workers: 64,
    };
}

/**
 * Senders in one process, receivers in another, both from `startAt`; the server's CPU
 * use (% of one core) from `startAt` to the end.
 */
async function flood(
  make: (role: "send" | "recv", startAt: number) => WorkJob,
  count: number,
  serverPid: number,
): Promise<{ perS: number; seconds: number; bytes: number; serverCpu: number }> {
  // After both have started and warmed up.
  const startAt = performance.timeOrigin + performance.now() + 5000;
  let cpu0 = NaN;
  const timer = setTimeout(() => {
    cpu0 = cpuSeconds(serverPid);
  }, startAt - performance.timeOrigin - performance.now());
  const [s, r] = await Promise.all([
    workJob<RateResult>(make("send", startAt)),
    workJob<RateResult>(make("recv", startAt)),
  ]);
  clearTimeout(timer);
  const cpu1 = cpuSeconds(serverPid);
  const now = performance.timeOrigin + performance.now();
  if (s.start! > startAt + 500 || r.start! > startAt + 500 || now < startAt) {
    throw new Error("a flood party started late; raise the start delay");
  }
  const seconds = (Math.max(s.end!, r.end!) - startAt) / 1000;
  const serverCpu = (cpu1 - cpu0) / ((now - startAt) / 1000) * 100;
  return { perS: count / seconds, seconds, bytes: r.bytes!, serverCpu };
}

/** Run bench/_pingpong_floor.ts: two relays, party Q, then party P, which times rounds. */
async function pingPongFloor(trips: 4 | 8, n: number, warmup: number): Promise<Summary> {
  const script = `${ROOT}bench/_pingpong_floor.ts`;
  const svcs: Service[] = [];
  try {
    for (const which of ["s1", "s2"]) {
      svcs.push(await spawnService(denoArgv(script, [which, String(trips)])));
    }
    const ports = svcs.map((svc) => svc.line); // each relay prints the port it took

    svcs.push(await spawnService(denoArgv(script, ["q", ...ports, String(trips)])));
    const r = await run(Deno.execPath(), [
      "run",
      "-A",
      script,
      "p",
      ...ports,
      String(trips),
      String(n),
      String(warmup),
    ]);
    if (r.code !== 0) throw new Error(`the ping-pong floor failed: ${r.stderr.trim()}`);
    return summarize(JSON.parse(r.stdout) as number[]);
  } finally {
    await Promise.all(svcs.map((s) => s.stop()));
  }
}

type Params = ReturnType<typeof params>;

/** Message size of every ping-pong, in bytes. */
const SIZE = 64;

/** A short random suffix for channel and list names. */
const uid = () => crypto.randomUUID().slice(0, 8);

/** The flood sizes and message counts, as numbers. */
const floods = (P: Params) => Object.entries(P.flood).map(([k, v]) => [Number(k), v]);

/** What the channel steps share once the cluster is up. */
interface ChanRun {
  ctx: SectionContext;
  P: Params;
  /** A client of the first server that makes the channels. */
  admin: Client;
}

/**
 * Ping-pong: P dials one server, Q another; each message is local to one party and
 * forwarded for the other.
 */
async function chanPingPong(
  env: ChanRun,
  name: string,
  pSrv: ServerProc,
  qSrv: ServerProc,
  goal: boolean,
  direct = false,
): Promise<void> {
  const { ctx, P, admin } = env;
  const { keyFile } = ctx;
  await part(ctx, TITLE, name, async () => {
    const ping = `/X${pSrv.id}/ping-${uid()}`, pong = `/X${qSrv.id}/pong-${uid()}`;
    await admin.walk(ping).makeChan(0);
    await admin.walk(pong).makeChan(0);
    const [pr, qr] = await Promise.all([
      workJob<LatencyResult>({
        mode: "chan-pingpong",
        url: pSrv.url,
        keyFile,
        ping,
        pong,
        n: P.pingN,
        warmup: P.pingWarmup,
        size: SIZE,
        direct,
      }),
      workJob<RateResult>({
        mode: "chan-echo",
        url: qSrv.url,
        keyFile,
        from: ping,
        to: pong,
        direct,
      }),
    ]);
    if (qr.ops !== P.pingN + P.pingWarmup) throw new Error(`echo relayed ${qr.ops}`);
    const layout = pSrv === qSrv
      ? "both parties dial the same server, which holds both channels"
      : direct
      ? "two CAP 0 channels, one each way: ping on server 1, pong on server 2; party P " +
        "dials server 1 and party Q server 2, and each reaches the other server over a " +
        "direct connection, as the library does by default"
      : "two CAP 0 channels, one each way: ping on server 1, pong on server 2 (joined to " +
        "1); party P dials server 1 (send ping local, recv pong forwarded), party Q dials " +
        "server 2 (recv ping forwarded, send pong local); every call forwarded " +
        "(direct: false)";
    ctx.add({
      section: TITLE,
      name: `${name}: p50`,
      value: pr.lat.p50,
      unit: "µs",
      goal: goal ? { op: "<=", value: 150 } : undefined,
      notes: `${layout}; P and Q are separate processes; P issues recv(pong) then ` +
        `send(ping), time until the pong is in; ${SIZE} B; ${pr.lat.n} round trips after ` +
        `${P.pingWarmup} warm-up; unpinned`,
    });
    ctx.add({
      section: TITLE,
      name: `${name}: p99`,
      value: pr.lat.p99,
      unit: "µs",
      notes: `mean ${pr.lat.mean.toFixed(0)} µs, max ${pr.lat.max.toFixed(0)} µs`,
    });
  });
}

/** The floor: the ping-pong's messages among four plain Deno processes. */
async function pingPongFloors(ctx: SectionContext, P: Params): Promise<void> {
  for (const trips of [8, 4] as const) {
    const name = `floor: ${trips} one-way trips among 4 Deno processes over plain TCP`;
    await part(ctx, TITLE, name, async () => {
      const lat = await pingPongFloor(trips, P.pingN, P.pingWarmup);
      ctx.add({
        section: TITLE,
        name: `${name}: p50`,
        value: lat.p50,
        unit: "µs",
        notes: (trips === 8
          ? "the messages of one exactly-once ping-pong round (send; offer; acknowledgement; " +
            "consumed; the same back), "
          : "the messages of a round whose receive returns on arrival (Redis BRPOP's shape), ") +
          "64 B each, between two relay processes and two parties (bench/_pingpong_floor.ts): " +
          "no MAC, cipher, msgpack or channel logic; " +
          `${lat.n} round trips after ${P.pingWarmup} warm-up; unpinned`,
      });
      ctx.add({
        section: TITLE,
        name: `${name}: p99`,
        value: lat.p99,
        unit: "µs",
        notes: `mean ${lat.mean.toFixed(0)} µs`,
      });
    });
  }
}

/** Pipelined throughput through one CAP 1024 channel on the dialed server. */
async function chanFlood(env: ChanRun, a: ServerProc): Promise<void> {
  const { ctx, P, admin } = env;
  for (const [sz, count] of floods(P)) {
    const name = `CAP 1024 channel, ${sz} B messages`;
    await part(ctx, TITLE, name, async () => {
      const chan = `/X${a.id}/flood-${sz}-${uid()}`;
      await admin.walk(chan).makeChan(1024);
      const r = await flood(
        (role, startAt) => ({
          mode: "chan-flood",
          url: a.url,
          keyFile: ctx.keyFile,
          chan,
          role,
          count,
          workers: P.workers,
          size: sz,
          warmup: P.floodWarmup[sz as 64 | 4096],
          startAt,
        }),
        count,
        a.pid,
      );
      if (r.bytes !== count * sz) throw new Error(`received ${r.bytes} of ${count * sz} bytes`);
      ctx.add({
        section: TITLE,
        name: `${name}: messages/s`,
        value: r.perS,
        unit: "msg/s",
        goal: sz === 64 ? { op: ">=", value: 100_000 } : undefined,
        notes:
          `${count} messages after ${
            P.floodWarmup[sz as 64 | 4096]
          } untimed ones (each process on a channel of its own); a sender process (${P.workers} concurrent send loops) and ` +
          `a receiver process (${P.workers} concurrent recv loops), both dialing the ` +
          `channel's server, one connection each; from a common start to the last receive ` +
          `${r.seconds.toFixed(2)} s; ${(r.perS * sz / 1e6).toFixed(2)} MB/s; byte count ` +
          `verified; server CPU ${r.serverCpu.toFixed(0)} % of one core`,
      });
    });
  }
}

/** Every channel figure and the floors, on a fresh two-server cluster. */
async function channelFigures(ctx: SectionContext, P: Params): Promise<void> {
  const { keyFile, tmp } = ctx;
  await using c = new Cluster(`${tmp}/chan`, keyFile);
  const a = await c.add();
  const b = await c.add(a.url);
  await waitConverged([a.url, b.url], 2, keyFile);
  const key = await readKeyFile(keyFile);
  await using admin = await connect(a.url, { key });
  const env: ChanRun = { ctx, P, admin };
  await chanPingPong(env, "ping-pong, CAP 0, parties on different servers", a, b, true);
  await chanPingPong(
    env,
    "ping-pong, CAP 0, parties on different servers, direct connections",
    a,
    b,
    true,
    true,
  );
  await chanPingPong(env, "ping-pong, CAP 0, both parties on one server", a, a, false);
  await pingPongFloors(ctx, P);
  await chanFlood(env, a);
  await c.stop();
}

/** What the Redis steps share. */
interface RedisRun {
  ctx: SectionContext;
  P: Params;
  redis: RedisPeer;
  /** The start of every Redis figure's note. */
  base: string;
}

/** The peer: Redis LPUSH/BRPOP ping-pong. */
async function redisPingPong(env: RedisRun): Promise<void> {
  const { ctx, P, base } = env;
  const port = env.redis.port;
  await part(ctx, TITLE, "peer: Redis ping-pong", async () => {
    const ping = `ping-${uid()}`, pong = `pong-${uid()}`;
    const [pr] = await Promise.all([
      workJob<LatencyResult>({
        mode: "redis-pingpong",
        port,
        ping,
        pong,
        n: P.pingN,
        warmup: P.pingWarmup,
        size: SIZE,
      }),
      workJob<RateResult>({ mode: "redis-echo", port, from: ping, to: pong }),
    ]);
    ctx.add({
      section: TITLE,
      name: "peer: Redis LPUSH/BRPOP ping-pong: p50",
      value: pr.lat.p50,
      unit: "µs",
      notes: `${base}; two lists, P: LPUSH ping then BRPOP pong; Q: BRPOP ping then ` +
        `LPUSH pong; separate processes; ${SIZE} B; ${pr.lat.n} round trips after ` +
        `${P.pingWarmup} warm-up`,
    });
    ctx.add({
      section: TITLE,
      name: "peer: Redis LPUSH/BRPOP ping-pong: p99",
      value: pr.lat.p99,
      unit: "µs",
      notes: `mean ${pr.lat.mean.toFixed(0)} µs`,
    });
  });
}

/** The peer: messages/s through a Redis list, the same shape as the channel's flood. */
async function redisFlood(env: RedisRun): Promise<void> {
  const { ctx, P, base, redis } = env;
  for (const [sz, count] of floods(P)) {
    const name = `peer: Redis list, ${sz} B messages`;
    await part(ctx, TITLE, name, async () => {
      const list = `flood-${sz}-${uid()}`;
      const r = await flood(
        (role, startAt) => ({
          mode: "redis-flood",
          port: redis.port,
          list,
          role,
          count,
          workers: P.workers,
          size: sz,
          warmup: P.floodWarmup[sz as 64 | 4096],
          startAt,
        }),
        count,
        redis.svc.pid,
      );
      if (r.bytes !== count * sz) throw new Error(`received ${r.bytes} bytes`);
      ctx.add({
        section: TITLE,
        name: `${name}: messages/s`,
        value: r.perS,
        unit: "msg/s",
        notes: `${base}; same shape as the channel: ${P.workers} LPUSH loops in one ` +
          `process, ${P.workers} BRPOP loops in another, a connection per loop (BRPOP ` +
          `blocks its connection), unbounded list, clients not pipelined; the same ` +
          `warm-up; ${count} messages in ` +
          `${r.seconds.toFixed(2)} s; redis-server CPU ${r.serverCpu.toFixed(0)} % of one core`,
      });
    });
  }
}

/** The peer: redis-benchmark's LPUSH and RPOP, the C client's ceiling. */
async function redisBenchmark(env: RedisRun): Promise<void> {
  const { ctx, P } = env;
  await part(ctx, TITLE, "peer: redis-benchmark", async () => {
    const n = ctx.quick ? 20_000 : 50_000;
    const r = await run("redis-benchmark", [
      "-p",
      String(env.redis.port),
      "-t",
      "lpush,rpop",
      "-n",
      String(n),
      "-d",
      String(SIZE),
      "-c",
      String(P.workers),
      "--csv",
    ]);
    if (r.code !== 0) throw new Error(`redis-benchmark failed: ${r.stderr.trim()}`);
    for (const test of ["LPUSH", "RPOP"]) {
      const row = new RegExp(`^"${test}","([\\d.]+)"`, "m").exec(r.stdout);
      if (!row) throw new Error(`redis-benchmark printed no ${test} row`);
      ctx.add({
        section: TITLE,
        name: `peer: redis-benchmark ${test} ${SIZE} B, ${P.workers} clients: requests/s`,
        value: Number(row[1]),
        unit: "req/s",
        notes: `the C client's ceiling for one side alone (${test} only, not push and pop ` +
          `at once), one request in flight per client, ${n} requests`,
      });
    }
  });
}

/** The peer: Redis, when it can be started. */
async function redisFigures(ctx: SectionContext, P: Params): Promise<void> {
  const redis = await startPeer(
    ctx,
    { section: TITLE, name: "peer: Redis" },
    () => startRedis(`${ctx.tmp}/redis`),
  );
  if (!redis) return;
  try {
    const base = `redis-server ${redis.version} on 127.0.0.1:${redis.port}, no persistence, ` +
      `no AUTH or TLS; a minimal RESP client in Deno (bench/_resp.ts)`;
    const env: RedisRun = { ctx, P, redis, base };
    await redisPingPong(env);
    await redisFlood(env);
    await redisBenchmark(env);
  } finally {
    await redis.svc.stop();
  }
}

/** The peer: etcd put → watch, when it can be started. */
async function etcdFigures(ctx: SectionContext, P: Params): Promise<void> {
  let tmpfs = false;
  const etcd = await startPeer(ctx, { section: TITLE, name: "peer: etcd put→watch" }, async () => {
    const scratch = await scratchDir(`${ctx.tmp}/etcd`);
    tmpfs = scratch.tmpfs;
    return await startEtcd(scratch.dir);
  });
  if (!etcd) return;
  try {
    await part(ctx, TITLE, "peer: etcd put→watch", async () => {
      const r = await workJob<LatencyResult>({
        mode: "etcd-watch",
        endpoint: etcd.endpoint,
        n: P.etcdN,
        warmup: 20,
        size: SIZE,
      });
      const where = tmpfs ? "on tmpfs (/dev/shm)" : "on disk";
      ctx.add({
        section: TITLE,
        name: "peer: etcd put→watch event: p50",
        value: r.lat.p50,
        unit: "µs",
        notes: `${etcd.version}, one member on loopback, data dir ${where}, no TLS or auth; ` +
          `HTTP/JSON gateway: a /v3/watch stream open, then POST /v3/kv/put and time until ` +
          `the event arrives; ${r.lat.n} sequential after 20 warm-up; ${SIZE} B values; ` +
          `put reply alone p50 ${r.lat2!.p50.toFixed(0)} µs`,
      });
      ctx.add({
        section: TITLE,
        name: "peer: etcd put→watch event: p99",
        value: r.lat.p99,
        unit: "µs",
        notes: `mean ${r.lat.mean.toFixed(0)} µs`,
      });
    });
  } finally {
    await etcd.svc.stop();
    removeScratch();
  }
}

/**
 * Section 8: ping-pong and pipelined throughput through channels; Redis and etcd peers.
 *
 * @param ctx the run's context
 */
async function channels(ctx: SectionContext): Promise<void> {
  const P = params(ctx.quick);
  await channelFigures(ctx, P);
  await redisFigures(ctx, P);
  await etcdFigures(ctx, P);
}

/** Section 8. */
export const chansSection: Section = { n: 8, title: TITLE, run: channels };
