/**
 * Membership section of the benchmark: circuit servers beside `serf agent`, one host per
 * network namespace on a bridge (`bench/_netns.ts`, shared with the tests), keyed circuit and encrypted serf.
 *
 * Figures, each for circuit and for serf in the same namespace layout:
 * - join convergence of 10, 25 and 50 members: every member started alone, then all
 *   but the first told at once to join the first (circuit: the server's `join`, serf: RPC
 *   `join`), until every member lists all; also every member spawned at once with `-j`
 *   / `-join` the first (process start-up included), and for circuit, with `--discover`;
 * - detection of a member killed with `kill -9` and of one stopped with SIGSTOP: until
 *   every other member no longer lists it;
 * - false leaves during a soak with one host's CPU busy and one host's link losing 10 %;
 * - idle RSS, CPU and bytes/s per member.
 *
 * What a member lists is asked by the bench itself, through an address it gives the
 * bridge inside the LAN's subnet (deleted with the bridge): circuit with the client
 * library (`ls /`), serf with its RPC (`members`, alive ones), each over one connection
 * per member, polled every few milliseconds only while the answer is awaited.
 *
 * @module
 */

import { type Client, connect, readKeyFile } from "../../mod.ts";
import { type Host, Lan, netnsUnavailable } from "../_netns.ts";
import { CLI, run, type Service, spawnDaemon, spawnService } from "../_cluster.ts";
import type { Section, SectionContext } from "../_context.ts";
import { cpuPercent, cpuSeconds, type ProcSample, sampleProc } from "../_proc.ts";
import type { FigureInput, Goal } from "../_report.ts";
import { SerfRpc } from "../_serf_rpc.ts";

const TITLE = "10. Membership (namespaces, beside serf)";
const S = TITLE;

const MiB = 1024 * 1024;
const SERF_PORT = 7946;
const SERF_RPC_PORT = 7373;
const GROUP = "228.8.8.8:7711";

function params(quick: boolean) {
  return quick
    ? { sizes: [10, 25], idleS: 5, reps: 1, detectHosts: 10, kills: 2, stops: 2, soakS: 30 }
    : { sizes: [10, 25, 50], idleS: 20, reps: 3, detectHosts: 10, kills: 3, stops: 3, soakS: 300 };
}

/** Poll interval while an answer is awaited, in ms: the resolution of every timing. */
const POLL_MS = 20;
/** Poll interval while members are still starting (spawn-at-once runs), in ms. */
const SLOW_POLL_MS = 100;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function sh(cmd: string, args: string[]): Promise<void> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr.trim()}`);
}

// ---------------------------------------------------------------------------------------
// The LAN

/** Labs not yet deleted, for a synchronous clean-up on Ctrl-C. */
const labs = new Set<Lab>();

/** A reachable {@linkcode Lan} and the processes started in it. */
class Lab implements AsyncDisposable {
  readonly hosts: Host[];
  readonly #procs = new Set<Service>();
  readonly #paused = new Set<number>();

  private constructor(readonly lan: Lan) {
    this.hosts = lan.hosts;
  }

  /**
   * A LAN of `n` hosts, with an address for the bench on its bridge.
   *
   * @param n hosts
   * @returns the lab
   */
  static async create(n: number): Promise<Lab> {
    const lab = new Lab(await Lan.create(n, { reachable: true }));
    labs.add(lab);
    return lab;
  }

  /** The root-namespace end of a host's veth (its counters are the host's traffic). */
  peerOf(h: Host): string {
    return this.lan.peerOf(h);
  }

  /** Remember a process to stop when the lab is deleted. */
  track(svc: Service): void {
    this.#procs.add(svc);
  }

  /** Send a signal to a process started here; SIGSTOPped ones are resumed on clean-up. */
  signal(pid: number, sig: Deno.Signal): void {
    try {
      Deno.kill(pid, sig);
    } catch { /* gone */ }
    if (sig === "SIGSTOP") this.#paused.add(pid);
    if (sig === "SIGCONT" || sig === "SIGKILL") this.#paused.delete(pid);
  }

  /**
   * Stop processes started here.
   *
   * @param which those to stop; all when absent
   */
  async stop(which?: Service[]): Promise<void> {
    const list = which ?? [...this.#procs];
    for (const s of list) if (this.#paused.has(s.pid)) this.signal(s.pid, "SIGKILL");
    await Promise.all(list.map((s) => s.stop()));
    for (const s of list) this.#procs.delete(s);
  }

  /** Delete namespaces and bridge synchronously (Ctrl-C). */
  deleteSync(): void {
    for (const pid of this.#paused) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    this.lan.deleteSync();
  }

  /** Stop every process, then delete the namespaces and the bridge (and its address). */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.stop();
    } finally {
      await this.lan[Symbol.asyncDispose]();
      labs.delete(this);
    }
  }
}

// ---------------------------------------------------------------------------------------
// The two systems

/** One running member: a circuit server or a serf agent. */
interface Member {
  /** Index of its host in the lab. */
  host: number;
  /** How other members list it: the circuit id (16 hex digits) or the serf node name. */
  name: string;
  /** The process (not the `ip netns exec` wrapper: that execs). */
  svc: Service;
  /** circuit: the URL. serf: `ADDR:7946`. */
  addr: string;
  /** circuit: the var directory. */
  varDir?: string;
}

/** An observer's connection to one member. */
interface View {
  /** The names this member lists as live members (itself included). */
  list(): Promise<Set<string>>;
  /** Tell this member to join the cluster of another. */
  join(other: Member): Promise<void>;
  /** circuit: the server's `stk`. */
  stk?(): Promise<Record<string, unknown>>;
  close(): void;
}

/** How members start. */
interface StartHow {
  /** Join this member at start (`-j URL`, `-join ADDR`). */
  join?: Member;
  /** circuit only: `--discover`. */
  discover?: boolean;
  /** A `taskset -c` CPU list. */
  pin?: string;
}

interface System {
  label: "circuit" | "serf";
  /**
   * Start a member on a host.
   *
   * @param waitUp circuit: wait for the URL (always). serf: wait until its RPC answers.
   */
  start(lab: Lab, host: number, how: StartHow, waitUp: boolean): Promise<Member>;
  /** Connect an observer, retrying until `deadline` (performance.now()). */
  view(m: Member, deadline?: number): Promise<View>;
}

function circuitSystem(ctx: SectionContext, key: Uint8Array): System {
  let seq = 0;
  return {
    label: "circuit",
    async start(lab, host, how) {
      const h = lab.hosts[host];
      const varDir = `${ctx.tmp}/membership/${h.ns}-${seq++}`;
      const args = ["run", "-A", CLI, "start", "--var", varDir, "--if", h.iface];
      args.push("--hmac", ctx.keyFile);
      if (how.discover) args.push("--discover", GROUP);
      if (how.join) args.push("-j", how.join.addr);
      const pre = ["netns", "exec", h.ns, ...(how.pin ? ["taskset", "-c", how.pin] : [])];
      const svc = await spawnService({ cmd: "ip", args: [...pre, Deno.execPath(), ...args] });
      lab.track(svc);
      const id = /\/Q([0-9a-f]{16})\/?$/.exec(svc.line)?.[1];
      if (!id) {
        await lab.stop([svc]);
        throw new Error(`circuit start printed "${svc.line}", not a URL`);
      }
      return { host, name: id, svc, addr: svc.line, varDir };
    },
    async view(m, deadline = performance.now() + 10_000) {
      let client: Client;
      for (;;) {
        try {
          client = await connect(m.addr, { key, timeoutMs: 10_000 });
          break;
        } catch (err) {
          if (performance.now() > deadline) throw err;
          await sleep(POLL_MS);
        }
      }
      const root = client.walk("/");
      const self = client.walk(`/X${m.name}`);
      return {
        list: async () => new Set((await root.ls()).map((e) => e.path.slice(2))),
        join: (other) => self.join(other.addr),
        stk: () => self.stk(),
        close: () => client.close(),
      };
    },
  };
}

function serfSystem(encryptKey: string): System {
  let seq = 0;
  return {
    label: "serf",
    async start(lab, host, how, waitUp) {
      const h = lab.hosts[host];
      const name = `h${host + 1}-${seq++}`;
      const args = ["netns", "exec", h.ns, ...(how.pin ? ["taskset", "-c", how.pin] : [])];
      args.push("serf", "agent", "-node", name, "-bind", `${h.addr}:${SERF_PORT}`);
      args.push("-rpc-addr", `${h.addr}:${SERF_RPC_PORT}`, "-encrypt", encryptKey);
      if (how.join) args.push("-join", how.join.addr);
      const ready = async () => {
        if (!waitUp) return true;
        (await SerfRpc.connect(h.addr, SERF_RPC_PORT)).close();
        return true;
      };
      const svc = await spawnDaemon({ cmd: "ip", args }, ready);
      lab.track(svc);
      return { host, name, svc, addr: `${h.addr}:${SERF_PORT}` };
    },
    async view(m, deadline = performance.now() + 10_000) {
      const host = m.addr.split(":")[0];
      let rpc: SerfRpc;
      for (;;) {
        try {
          rpc = await SerfRpc.connect(host, SERF_RPC_PORT);
          break;
        } catch (err) {
          if (performance.now() > deadline) throw err;
          await sleep(10);
        }
      }
      return {
        list: async () =>
          new Set((await rpc.members()).filter((x) => x.Status === "alive").map((x) => x.Name)),
        join: async (other) => {
          await rpc.join([other.addr]);
        },
        close: () => rpc.close(),
      };
    },
  };
}

// ---------------------------------------------------------------------------------------
// Watching members until each lists what is awaited

/** Polls views, each in its own loop, until each one's list satisfies `ok`. */
class Watch {
  /** Per slot: ms after t0 when its list first satisfied `ok`, or null. */
  readonly at: (number | null)[];
  /** Per slot: the size of its last list. */
  readonly seen: number[];
  pollMs = POLL_MS;
  #stopped = false;
  #done: () => void = () => {};
  #finished: Promise<void>;

  constructor(
    slots: number,
    readonly t0: number,
    readonly ok: (slot: number, names: Set<string>) => boolean,
  ) {
    this.at = new Array(slots).fill(null);
    this.seen = new Array(slots).fill(0);
    this.#finished = new Promise((r) => (this.#done = r));
    if (slots === 0) this.#done();
  }

  /** Start polling a slot's view. */
  track(slot: number, view: View): void {
    void (async () => {
      while (!this.#stopped && this.at[slot] === null) {
        try {
          const names = await view.list();
          this.seen[slot] = names.size;
          if (this.ok(slot, names)) {
            this.at[slot] = performance.now() - this.t0;
            if (this.at.every((x) => x !== null)) this.#done();
            break;
          }
        } catch { /* not answering yet */ }
        await sleep(this.pollMs);
      }
    })();
  }

  /**
   * Wait until every slot is satisfied.
   *
   * @param timeoutMs give up after this long (from now)
   * @param what for the error
   * @returns ms after t0 until the last and the first slot were satisfied
   */
  async wait(timeoutMs: number, what: string): Promise<{ last: number; first: number }> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), timeoutMs)));
    const ok = await Promise.race([this.#finished.then(() => true), timeout]);
    clearTimeout(timer);
    this.#stopped = true;
    if (!ok) {
      throw new Error(
        `${what}: not within ${(timeoutMs / 1000).toFixed(0)} s; lists had ${
          this.seen.join(",")
        } members`,
      );
    }
    const at = this.at as number[];
    return { last: Math.max(...at), first: Math.min(...at) };
  }
}

/** Names a member set must list exactly. */
function exactly(names: string[]): (slot: number, got: Set<string>) => boolean {
  return (_slot, got) => got.size === names.length && names.every((n) => got.has(n));
}

/** A running cluster: members by host, with a view of each. */
class Ring {
  readonly members = new Map<number, { m: Member; v: View }>();

  constructor(readonly sys: System, readonly lab: Lab) {}

  names(): string[] {
    return [...this.members.values()].map((x) => x.m.name);
  }

  /** Wait until every member lists exactly the members of the ring. */
  async converged(timeoutMs = 60_000): Promise<number> {
    const list = [...this.members.values()];
    const w = new Watch(list.length, performance.now(), exactly(this.names()));
    list.forEach((x, i) => w.track(i, x.v));
    return (await w.wait(timeoutMs, `${this.sys.label} to converge to ${list.length}`)).last;
  }

  async add(host: number, how: StartHow): Promise<Member> {
    const m = await this.sys.start(this.lab, host, how, true);
    try {
      this.members.set(host, { m, v: await this.sys.view(m) });
    } catch (err) {
      await this.lab.stop([m.svc]);
      throw err;
    }
    return m;
  }

  /** Stop a member (its view closed); `kill` skips the graceful stop. */
  async remove(host: number, kill = false): Promise<void> {
    const x = this.members.get(host);
    if (!x) return;
    this.members.delete(host);
    x.v.close();
    if (kill) this.lab.signal(x.m.svc.pid, "SIGKILL");
    await this.lab.stop([x.m.svc]);
  }

  closeViews(): void {
    for (const x of this.members.values()) x.v.close();
  }

  async stop(): Promise<void> {
    this.closeViews();
    await this.lab.stop([...this.members.values()].map((x) => x.m.svc));
    this.members.clear();
  }
}

// ---------------------------------------------------------------------------------------
// Measurements

/** Several runs of one convergence measurement. */
interface Runs {
  /** The median run (by `all`; of an even count, the slower middle one). */
  med: Convergence;
  /** Every run's `all`, ms, in order. */
  each: number[];
}

/**
 * The median of runs.
 *
 * @param byAfterUp rank by `all − lastUp` (discovery) instead of `all`
 */
function runsOf(runs: Convergence[], byAfterUp = false): Runs {
  const key = (c: Convergence) => byAfterUp ? c.all - c.lastUp! : c.all;
  const sorted = [...runs].sort((a, b) => key(a) - key(b));
  return { med: sorted[Math.floor(sorted.length / 2)], each: runs.map(key) };
}

interface Convergence {
  /** ms from t0 until every member listed all. */
  all: number;
  /** ms from t0 until the first member listed all. */
  first: number;
  /** ms from t0 until the last member was up (spawn runs). */
  lastUp?: number;
  /** From circuit's server.log: ms from t0 until the last `joined` line. */
  logLast?: number;
  /** CPU seconds all members used from t0 until every member listed all. */
  cpuS?: number;
}

/** Milliseconds since the epoch of a server.log line (`2026-11-25 05:49:57.184 +00:00`). */
function logTime(line: string): number | null {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d+) ([+-]\d\d:\d\d)/.exec(line);
  return m ? Date.parse(`${m[1]}T${m[2]}${m[3]}`) : null;
}

interface LogEvent {
  at: number;
  id: string;
  what: "joined" | "left" | "failed";
}

async function serverLog(varDir: string): Promise<LogEvent[]> {
  const text = await Deno.readTextFile(`${varDir}/server.log`).catch(() => "");
  const out: LogEvent[] = [];
  for (const line of text.split("\n")) {
    const m = /circuit·membership: member X([0-9a-f]{16}) (joined|left|failed)/.exec(line);
    const at = logTime(line);
    if (m && at !== null) out.push({ at, id: m[1], what: m[2] as LogEvent["what"] });
  }
  return out;
}

/** ms after `wallT0` of the last `joined` line in any of the servers' logs. */
async function lastLoggedJoin(members: Member[], wallT0: number): Promise<number | undefined> {
  let last = -Infinity;
  for (const m of members) {
    for (const e of await serverLog(m.varDir!)) {
      if (e.what === "joined") last = Math.max(last, e.at);
    }
  }
  return Number.isFinite(last) ? last - wallT0 : undefined;
}

/**
 * Every member started alone; then all but the first told at once to join the first.
 * Leaves the cluster running (returned) for the idle measurement.
 */
async function runtimeJoin(sys: System, lab: Lab, n: number): Promise<[Convergence, Ring]> {
  const ring = new Ring(sys, lab);
  try {
    await Promise.all(Array.from({ length: n }, (_, i) => ring.add(i, {})));
    const seed = ring.members.get(0)!.m;
    const names = ring.names();
    await sleep(500); // let start-up settle
    const pids = [...ring.members.values()].map((x) => x.m.svc.pid);
    const cpu0 = cpuSeconds(...pids);
    const t0 = performance.now();
    const wallT0 = performance.timeOrigin + t0;
    const w = new Watch(n, t0, exactly(names));
    // Errors are kept, not thrown, so none is left unhandled if the wait fails first.
    const joins = [...ring.members.values()].filter((x) => x.m !== seed).map((x) =>
      x.v.join(seed).then(() => null, (err: unknown) => err)
    );
    [...ring.members.values()].forEach((x, i) => w.track(i, x.v));
    const r = await w.wait(60_000, `${sys.label}: ${n} to converge after joining`);
    const cpuS = cpuSeconds(...pids) - cpu0;
    const failed = (await Promise.all(joins)).find((e) => e !== null);
    if (failed) throw new Error(`a join failed: ${errText(failed)}`);
    const logLast = sys.label === "circuit"
      ? await lastLoggedJoin([...ring.members.values()].map((x) => x.m), wallT0)
      : undefined;
    return [{ all: r.last, first: r.first, logLast, cpuS }, ring];
  } catch (err) {
    await ring.stop();
    throw err;
  }
}

/**
 * Members spawned at once: with `join`, the first is started and up before t0 and the
 * others spawned at t0 joining it; with `discover`, all spawned at t0 with `--discover`.
 */
async function spawnAtOnce(
  sys: System,
  lab: Lab,
  n: number,
  mode: "join" | "discover",
): Promise<Convergence> {
  const started: Member[] = [];
  const views: View[] = [];
  try {
    let seed: Member | undefined;
    if (mode === "join") {
      seed = await sys.start(lab, 0, {}, true);
      started.push(seed);
      await sleep(300);
    }
    const t0 = performance.now();
    const wallT0 = performance.timeOrigin + t0;
    const names: (string | null)[] = new Array(n).fill(null);
    if (seed) names[0] = seed.name;
    // Every slot must list n names, and once all are up, exactly those.
    const w = new Watch(n, t0, (_i, got) => {
      if (got.size !== n) return false;
      return names.every((x) => x === null || got.has(x));
    });
    w.pollMs = SLOW_POLL_MS;
    let lastUp = 0;
    const hosts = Array.from({ length: n }, (_, i) => i).filter((i) => !seed || i > 0);
    const up = async (m: Member) => {
      const v = await sys.view(m, performance.now() + 30_000);
      views.push(v);
      w.track(m.host, v);
    };
    if (seed) await up(seed);
    await Promise.all(hosts.map(async (i) => {
      const m = await sys.start(
        lab,
        i,
        mode === "join" ? { join: seed } : { discover: true },
        false,
      );
      started.push(m);
      names[i] = m.name;
      await up(m);
      lastUp = Math.max(lastUp, performance.now() - t0);
    }));
    w.pollMs = POLL_MS;
    const r = await w.wait(60_000, `${sys.label}: ${n} spawned at once (${mode}) to converge`);
    const logLast = sys.label === "circuit" ? await lastLoggedJoin(started, wallT0) : undefined;
    return { all: r.last, first: r.first, lastUp, logLast };
  } finally {
    for (const v of views) v.close();
    await lab.stop(started.map((m) => m.svc));
  }
}

interface MemberSample extends ProcSample {
  /** Bytes the host sent. */
  tx: number;
  /** Bytes the host received. */
  rx: number;
}

async function sampleMember(lab: Lab, m: Member): Promise<MemberSample> {
  const proc = sampleProc(m.svc.pid);
  const peer = lab.peerOf(lab.hosts[m.host]);
  // The root end of the veth receives what the host sends.
  const rx = Number(await Deno.readTextFile(`/sys/class/net/${peer}/statistics/tx_bytes`));
  const tx = Number(await Deno.readTextFile(`/sys/class/net/${peer}/statistics/rx_bytes`));
  return { ...proc, tx, rx };
}

interface Idle {
  /** Median VmRSS, MiB. */
  rss: number;
  rssMin: number;
  rssMax: number;
  /** Mean CPU per member, % of one core. */
  cpu: number;
  cpuMax: number;
  /** Mean bytes/s sent per member (host → bridge). */
  sent: number;
  /** Mean bytes/s received per member. */
  recv: number;
  comm: string;
  /** Failed or left reports about members, from start to the end of the idle period. */
  flaps: number;
}

/**
 * Failed or left reports about one another over the members' lives so far: circuit's
 * server.log lines, serf's `EventMemberFailed`/`EventMemberLeave` log lines (the last
 * 4 KiB of its output).
 */
async function flapsOf(members: Member[]): Promise<number> {
  const names = new Set(members.map((m) => m.name));
  let flaps = 0;
  for (const m of members) {
    if (m.varDir) {
      for (const e of await serverLog(m.varDir)) {
        if (e.what !== "joined" && names.has(e.id)) flaps++;
      }
    } else {
      for (const x of m.svc.stderrTail().matchAll(/EventMember(?:Failed|Leave): (\S+)/g)) {
        if (names.has(x[1])) flaps++;
      }
    }
  }
  return flaps;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function idle(lab: Lab, members: Member[], seconds: number): Promise<Idle> {
  await sleep(2000); // let the observers' connections close and joins settle
  const before = await Promise.all(members.map((m) => sampleMember(lab, m)));
  await sleep(seconds * 1000);
  const after = await Promise.all(members.map((m) => sampleMember(lab, m)));
  const per = members.map((_, i) => {
    const s = (after[i].at - before[i].at) / 1000;
    return {
      rss: after[i].rssKiB * 1024 / MiB,
      cpu: cpuPercent(before[i], after[i]),
      sent: (after[i].tx - before[i].tx) / s,
      recv: (after[i].rx - before[i].rx) / s,
    };
  });
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const comm = (await Deno.readTextFile(`/proc/${members[0].svc.pid}/comm`)).trim();
  const rss = per.map((p) => p.rss);
  return {
    rss: median(rss),
    rssMin: Math.min(...rss),
    rssMax: Math.max(...rss),
    cpu: mean(per.map((p) => p.cpu)),
    cpuMax: Math.max(...per.map((p) => p.cpu)),
    sent: mean(per.map((p) => p.sent)),
    recv: mean(per.map((p) => p.recv)),
    comm,
    flaps: await flapsOf(members),
  };
}

interface Trial {
  how: "kill -9" | "SIGSTOP";
  /** ms until every other member stopped listing it. */
  all: number;
  /** ms until the first did. */
  first: number;
}

/**
 * Kill or stop one member and time until no other lists it; then remove it for good and
 * start a fresh member on its host, so each trial runs in a cluster of the same size.
 */
async function detectTrial(ring: Ring, host: number, how: Trial["how"]): Promise<Trial> {
  const victim = ring.members.get(host)!;
  const others = [...ring.members.values()].filter((x) => x !== victim);
  const t0 = performance.now();
  const w = new Watch(others.length, t0, (_i, got) => !got.has(victim.m.name));
  ring.lab.signal(victim.m.svc.pid, how === "kill -9" ? "SIGKILL" : "SIGSTOP");
  others.forEach((x, i) => w.track(i, x.v));
  const r = await w.wait(60_000, `${ring.sys.label}: ${how} of ${victim.m.name} noticed`);
  await ring.remove(host, true);
  await sleep(1000);
  await ring.add(host, { join: ring.members.get(0)!.m });
  await ring.converged();
  await sleep(1000);
  return { how, all: r.last, first: r.first };
}

/** How the soak disturbs the LAN. */
interface Disturbance {
  /** The host whose core is kept busy; its member is pinned to that core. */
  loaded: number;
  /** The host whose outgoing packets are lost at 10 %. */
  lossy: number;
  /** The core, or undefined when taskset does not work. */
  pin?: string;
  /** How the loss is made, for the notes. */
  lossHow: string;
  /** How the load is made. */
  loadHow: string;
}

/** 10 % loss on a host's outgoing packets: netem when the kernel has it, else nftables. */
async function addLoss(lab: Lab, host: number): Promise<string> {
  const h = lab.hosts[host];
  const netem = await run("ip", [
    ...["netns", "exec", h.ns, "tc", "qdisc", "add", "dev", h.iface],
    ...["root", "netem", "loss", "10%"],
  ]);
  if (netem.code === 0) return `tc qdisc add dev ${h.iface} root netem loss 10% (in its namespace)`;
  const rules =
    `table netdev loss {\n  chain out {\n    type filter hook egress device "${h.iface}" ` +
    `priority 0; policy accept;\n    numgen random mod 10 0 drop;\n  }\n}\n`;
  const file = `${h.ns}.nft`;
  const path = `${Deno.makeTempDirSync({ prefix: "circuit-bench-nft-" })}/${file}`;
  try {
    await Deno.writeTextFile(path, rules);
    await sh("ip", ["netns", "exec", h.ns, "nft", "-f", path]);
  } finally {
    await Deno.remove(path.slice(0, path.lastIndexOf("/")), { recursive: true }).catch(() => {});
  }
  return `nftables netdev egress hook on ${h.iface} in its namespace, \`numgen random mod 10 0 ` +
    `drop\` (silent, like netem; this kernel has no sch_netem: "${
      netem.stderr.trim().split("\n")[0]
    }")`;
}

async function disturb(ctx: SectionContext, lab: Lab): Promise<Disturbance> {
  const cores = navigator.hardwareConcurrency;
  const loaded = 1, lossy = 2;
  const pin = ctx.pinnable ? String(Math.max(0, cores - 1)) : undefined;
  const loops = 2;
  const h = lab.hosts[loaded];
  for (let i = 0; i < loops; i++) {
    const args = ["netns", "exec", h.ns, ...(pin ? ["taskset", "-c", pin] : [])];
    args.push("sh", "-c", "while :; do :; done");
    lab.track(await spawnDaemon({ cmd: "ip", args }, () => Promise.resolve(true)));
  }
  const loadHow = pin
    ? `${loops} busy loops (\`sh -c 'while :; do :; done'\`) pinned with taskset to core ${pin}, ` +
      `where host ${loaded + 1}'s member is pinned too`
    : `${loops} busy loops, unpinned (taskset does not work here)`;
  const lossHow = await addLoss(lab, lossy);
  return { loaded, lossy, pin, lossHow, loadHow };
}

interface Soak {
  /** Failed or left events about members that never stopped, summed over observers. */
  falseLeaves: number;
  /** Rejoins seen (joins after the soak started). */
  rejoins: number;
  detail: string;
}

async function soak(
  sys: System,
  lab: Lab,
  n: number,
  d: Disturbance,
  seconds: number,
  progress: (s: string) => void,
): Promise<Soak> {
  const ring = new Ring(sys, lab);
  const streams: SerfRpc[] = [];
  try {
    const seed = await ring.add(0, d.loaded === 0 ? { pin: d.pin } : {});
    await Promise.all(
      Array.from({ length: n - 1 }, (_, k) => k + 1).map((i) =>
        ring.add(i, { join: seed, pin: i === d.loaded ? d.pin : undefined })
      ),
    );
    await ring.converged(120_000);
    const names = new Set(ring.names());
    const wallStart = Date.now();
    let falseLeaves = 0, rejoins = 0;
    const byWhom = new Map<string, number>();
    // A rejoin is a join an observer reports after it reported that member gone.
    const gone = new Set<string>();
    const seen = (observer: string, member: string, joined: boolean) => {
      if (!names.has(member) || member === observer) return;
      if (joined) {
        if (gone.delete(`${observer} ${member}`)) rejoins++;
        return;
      }
      falseLeaves++;
      gone.add(`${observer} ${member}`);
      byWhom.set(member, (byWhom.get(member) ?? 0) + 1);
    };
    if (sys.label === "serf") {
      for (const { m } of ring.members.values()) {
        const rpc = await SerfRpc.connect(m.addr.split(":")[0], SERF_RPC_PORT);
        streams.push(rpc);
        await rpc.stream("member-join,member-failed,member-leave", (e) => {
          for (const x of e.Members ?? []) seen(m.name, x.Name, e.Event === "member-join");
        });
      }
    }
    ring.closeViews(); // no polling during the soak
    progress(`${sys.label}: soak of ${seconds} s with ${n} members`);
    await sleep(seconds * 1000);
    const wallEnd = Date.now();
    if (sys.label === "circuit") {
      for (const { m } of ring.members.values()) {
        for (const e of await serverLog(m.varDir!)) {
          if (e.at >= wallStart && e.at <= wallEnd) seen(m.name, e.id, e.what === "joined");
        }
      }
    }
    // Who lists whom at the end, and circuit's SWIM counters.
    let missing = 0;
    const stks: Record<string, unknown>[] = [];
    for (const { m } of ring.members.values()) {
      const v = await sys.view(m);
      try {
        const got = await v.list();
        for (const name of names) if (!got.has(name)) missing++;
        if (v.stk) stks.push(await v.stk());
      } finally {
        v.close();
      }
    }
    const suspicions = stks.length ? swimCounters(stks) : "";
    const hostOf = (name: string) =>
      [...ring.members.values()].find((x) => x.m.name === name)?.m.host ?? -1;
    const who = [...byWhom].map(([name, k]) => `host ${hostOf(name) + 1} ×${k}`).join(", ");
    return {
      falseLeaves,
      rejoins,
      detail: `${missing} (member, member) pairs missing at the end` +
        (who ? `; reported about: ${who}` : "") + (suspicions ? `; ${suspicions}` : ""),
    };
  } finally {
    for (const s of streams) s.close();
    await ring.stop();
  }
}

/** Sum of SWIM counters over the servers, from their `stk`. */
function swimCounters(stks: Record<string, unknown>[]): string {
  let failed = 0, indirect = 0, refutations = 0;
  for (const stk of stks) {
    const m = stk.Membership as
      | { refutations?: number; probes?: { failed?: number; indirectAcked?: number } }
      | undefined;
    failed += m?.probes?.failed ?? 0;
    indirect += m?.probes?.indirectAcked ?? 0;
    refutations += m?.refutations ?? 0;
  }
  return `SWIM counters summed over the servers since start: ${failed} probes failed ` +
    `(each starts a suspicion), ${indirect} acked only through others, ${refutations} ` +
    `refutations`;
}

// ---------------------------------------------------------------------------------------
// The section

/** Figures buffered so circuit's row comes before serf's for each measurement. */
class Rows {
  #rows: FigureInput[] = [];
  constructor(readonly ctx: SectionContext) {}
  add(f: Omit<FigureInput, "section">): void {
    this.#rows.push({ section: S, ...f });
  }
  flush(): void {
    for (const r of this.#rows) this.ctx.add(r);
    this.#rows = [];
  }
}

/** The goal `≤ fixed` and, when serf measured, also `≤ serf` ("ahead of serf"). */
function goalOf(fixed: number | null, serf: number | null | undefined): Goal | undefined {
  const v = [fixed, serf ?? null].filter((x): x is number => x !== null && Number.isFinite(x));
  return v.length ? { op: "<=", value: Number(Math.min(...v).toPrecision(4)) } : undefined;
}

function goalNote(fixed: number | null, serf: number | null | undefined, unit: string): string {
  const parts: string[] = [];
  if (fixed !== null) parts.push(`≤ ${fixed} ${unit} (issue)`);
  if (serf !== null && serf !== undefined) parts.push(`ahead of serf (${fmt(serf)} ${unit})`);
  return parts.length ? `goal: ${parts.join(" and ")}` : "";
}

/** Milliseconds for notes. */
function ms(v: number | undefined): string {
  return v === undefined ? "?" : v.toFixed(0);
}

function fmt(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

/**
 * Membership of circuit beside serf, in network namespaces.
 *
 * @param ctx the run's context
 */
async function membershipBench(ctx: SectionContext): Promise<void> {
  const P = params(ctx.quick);
  const why = await netnsUnavailable();
  if (why) {
    ctx.add({ section: S, name: "all (skipped)", value: null, unit: "", notes: why });
    return;
  }
  const key = await readKeyFile(ctx.keyFile);
  const circuit = circuitSystem(ctx, key);
  const serfVersion = await run("serf", ["version"]).catch(() => null);
  const serfWhy = serfVersion?.code === 0 ? null : "serf is not installed (Debian package serf)";
  const encryptKey = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
  const serf = serfWhy ? null : serfSystem(encryptKey);
  if (serfVersion?.code === 0) {
    ctx.note(
      `Section 10 peer: ${serfVersion.stdout.split("\n")[0].trim()} (\`serf agent\`, LAN ` +
        `profile, -encrypt with a random key; circuit keyed with --hmac), one member per ` +
        `namespace, each namespace a host on one bridge.`,
    );
  }
  const restoreNeigh = await roomForNeighbours(Math.max(...P.sizes, P.detectHosts), ctx);
  const onSignal = () => {
    for (const lab of labs) lab.deleteSync();
    labs.clear();
    restoreNeigh();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const rows = new Rows(ctx);
  try {
    // Join convergence and idle cost, by size.
    for (const n of P.sizes) {
      try {
        await convergenceAndIdle(ctx, rows, circuit, serf, serfWhy, n, P.idleS, P.reps);
      } finally {
        rows.flush();
      }
    }
    // Detection, then the soak.
    try {
      await detectionAndSoak(ctx, rows, circuit, serf, serfWhy, P);
    } finally {
      rows.flush();
    }
  } finally {
    for (const lab of [...labs]) await lab[Symbol.asyncDispose]().catch(() => {});
    restoreNeigh();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

const NEIGH = "/proc/sys/net/ipv4/neigh/default/gc_thresh";

/**
 * Make the kernel's ARP table big enough. It is one table for every namespace: `n` hosts
 * that all talk to one another need about n² entries, and past `gc_thresh3` (1024 by
 * default) the kernel refuses new ones ("neighbor table overflow") and UDP sends fail
 * with ENOBUFS: 50 hosts then lose thousands of packets, and serf and circuit alike
 * report members failed. Raised for the section, restored after.
 *
 * @param n the most hosts at once
 * @returns a function that restores the old thresholds (synchronous, idempotent)
 */
async function roomForNeighbours(n: number, ctx: SectionContext): Promise<() => void> {
  const read = (i: number) => Number(Deno.readTextFileSync(`${NEIGH}${i}`).trim());
  let old: number[];
  try {
    old = [1, 2, 3].map(read);
  } catch {
    return () => {};
  }
  const need = n * (n + 2) + 1024; // the hosts, the bench's address, others' namespaces
  if (old[2] >= need && old[1] >= need / 2) return () => {};
  const want = [old[0], Math.max(old[1], need), Math.max(old[2], 2 * need)];
  try {
    // thresh1 ≤ thresh2 ≤ thresh3: raise the top first.
    for (const i of [3, 2]) await Deno.writeTextFile(`${NEIGH}${i}`, String(want[i - 1]));
  } catch (err) {
    ctx.note(
      `Section 10: could not raise the ARP table's size (${errText(err)}); with more ` +
        `than about 30 hosts, packets may be dropped for want of neighbour entries.`,
    );
    return () => {};
  }
  ctx.note(
    `Section 10 raised net.ipv4.neigh.default.gc_thresh2/3 from ${old[1]}/${old[2]} to ` +
      `${want[1]}/${want[2]} for its run (restored after): the kernel's ARP table is shared ` +
      `by every namespace, and ${n} hosts that all talk to one another need about ${n * n} ` +
      `entries; past gc_thresh3 UDP sends fail with ENOBUFS ("neighbor table overflow").`,
  );
  let done = false;
  return () => {
    if (done) return;
    done = true;
    try {
      // Only undo what is still ours.
      if (read(2) === want[1]) Deno.writeTextFileSync(`${NEIGH}2`, String(old[1]));
      if (read(3) === want[2]) Deno.writeTextFileSync(`${NEIGH}3`, String(old[2]));
    } catch { /* leave it */ }
  };
}

async function attempt<T>(
  ctx: SectionContext,
  rows: Rows,
  name: string,
  fn: () => Promise<T>,
): Promise<T | null> {
  try {
    return await fn();
  } catch (err) {
    ctx.progress(`${name} failed: ${errText(err)}`);
    rows.add({ name: `${name} (failed)`, value: null, unit: "", notes: errText(err) });
    return null;
  }
}

async function convergenceAndIdle(
  ctx: SectionContext,
  rows: Rows,
  circuit: System,
  serf: System | null,
  serfWhy: string | null,
  n: number,
  idleS: number,
  reps: number,
): Promise<void> {
  ctx.progress(`membership: ${n} hosts`);
  await using lab = await Lab.create(n);
  const fixed = 500;
  // Runs of the join: the last one keeps its cluster for the idle measurement.
  const joinRuns = async (sys: System): Promise<[Runs, Idle]> => {
    const runs: Convergence[] = [];
    for (let r = 0; r < reps; r++) {
      const [c, ring] = await runtimeJoin(sys, lab, n);
      runs.push(c);
      ring.closeViews();
      if (r < reps - 1) {
        await ring.stop();
        continue;
      }
      const members = [...ring.members.values()].map((x) => x.m);
      const i = await idle(lab, members, idleS).finally(() => ring.stop());
      return [runsOf(runs), i];
    }
    throw new Error("no runs");
  };
  const spawnRuns = async (sys: System, mode: "join" | "discover"): Promise<Runs> => {
    const runs: Convergence[] = [];
    for (let r = 0; r < reps; r++) runs.push(await spawnAtOnce(sys, lab, n, mode));
    return runsOf(runs, mode === "discover");
  };
  // serf first: circuit's goals include being ahead of it.
  let sJoin: Runs | null = null, sSpawn: Runs | null = null, sIdle: Idle | null = null;
  if (serf) {
    [sJoin, sIdle] = await attempt(
      ctx,
      rows,
      `serf: ${n} agents join the first`,
      () => joinRuns(serf),
    ) ?? [null, null];
    sSpawn = await attempt(
      ctx,
      rows,
      `serf: ${n} agents spawned with -join`,
      () => spawnRuns(serf, "join"),
    );
  }
  const [cJoin, cIdle] = await attempt(
    ctx,
    rows,
    `${n} servers join the first`,
    () => joinRuns(circuit),
  ) ?? [null, null];
  const cSpawn = await attempt(
    ctx,
    rows,
    `${n} servers spawned with -j`,
    () => spawnRuns(circuit, "join"),
  );
  const cDisc = await attempt(
    ctx,
    rows,
    `${n} servers spawned with --discover`,
    () => spawnRuns(circuit, "discover"),
  );

  const runsNote = (r: Runs) =>
    r.each.length > 1 ? `median of ${r.each.length} runs (${r.each.map(ms).join(", ")} ms); ` : "";
  const joinHow = `all ${n} started alone and up; at t0 all but the first are told at once ` +
    `to join the first`;
  const cpuNote = (c: Convergence) =>
    c.cpuS === undefined ? "" : `; the ${n} used ${c.cpuS.toFixed(2)} CPU-s in all meanwhile`;
  if (cJoin) {
    const c = cJoin.med;
    rows.add({
      name: `${n} servers: join the first → all list ${n}`,
      value: c.all,
      unit: "ms",
      goal: goalOf(fixed, sJoin?.med.all),
      notes: `${runsNote(cJoin)}${joinHow} (the server's \`join\` through the library); until ` +
        `every server's \`ls /\` lists all ${n}; first after ${ms(c.first)} ms; last ` +
        `\`joined\` line in the server.logs at ${ms(c.logLast)} ms${cpuNote(c)}; polled every ` +
        `${POLL_MS} ms. ${goalNote(fixed, sJoin?.med.all, "ms")}`,
    });
  }
  if (sJoin) {
    const c = sJoin.med;
    rows.add({
      name: `serf: ${n} agents: join the first → all list ${n}`,
      value: c.all,
      unit: "ms",
      notes: `${runsNote(sJoin)}${joinHow} (RPC \`join\`); until every agent's RPC ` +
        `\`members\` lists all ${n} alive; first after ${ms(c.first)} ms${cpuNote(c)}; ` +
        `polled every ${POLL_MS} ms`,
    });
  } else if (!serf) {
    rows.add({ name: `serf: ${n} agents (skipped)`, value: null, unit: "", notes: serfWhy! });
  }
  const spawnHow = (what: string, c: Convergence) =>
    `the first up, then at t0 the other ${n - 1} spawned at once with ${what}; until every ` +
    `member lists all ${n}; includes process start-up (all up after ${ms(c.lastUp)} ms, on ` +
    `${navigator.hardwareConcurrency} cores)`;
  if (cSpawn) {
    const c = cSpawn.med;
    rows.add({
      name: `${n} servers spawned with -j the first → all list ${n}`,
      value: c.all,
      unit: "ms",
      goal: goalOf(null, sSpawn?.med.all),
      notes: `${runsNote(cSpawn)}${spawnHow("-j URL", c)}; last \`joined\` line logged at ` +
        `${ms(c.logLast)} ms. ${goalNote(null, sSpawn?.med.all, "ms")}`,
    });
  }
  if (sSpawn) {
    rows.add({
      name: `serf: ${n} agents spawned with -join the first → all list ${n}`,
      value: sSpawn.med.all,
      unit: "ms",
      notes: `${runsNote(sSpawn)}${spawnHow("-join ADDR", sSpawn.med)}`,
    });
  }
  if (cDisc) {
    const c = cDisc.med;
    rows.add({
      name: `${n} servers spawned with --discover: last up → all list ${n}`,
      value: c.all - c.lastUp!,
      unit: "ms",
      goal: goalOf(fixed, null),
      notes: `${runsNote(cDisc)}all ${n} spawned at once with --discover ${GROUP} (no join); ` +
        `from the moment the last printed its URL (${ms(c.lastUp)} ms after spawning) until ` +
        `every server lists all ${n}; ${ms(c.all)} ms from spawning; last \`joined\` line ` +
        `logged at ${ms(c.logLast)} ms from spawning. ${goalNote(fixed, null, "ms")}; serf ` +
        `has no comparable figure (its -discover is mDNS)`,
    });
  }
  const idleHow = `over ${idleS} s after joining the first, no client connected`;
  if (cIdle) {
    rows.add({
      name: `idle, ${n} servers: RSS per server (median)`,
      value: cIdle.rss,
      unit: "MiB",
      goal: goalOf(null, sIdle?.rss),
      notes: `VmRSS of the server process (${cIdle.comm}), MiB = 2^20 B; min ` +
        `${fmt(cIdle.rssMin)}, max ${fmt(cIdle.rssMax)}. ${goalNote(null, sIdle?.rss, "MiB")}`,
    });
  }
  if (sIdle) {
    rows.add({
      name: `serf: idle, ${n} agents: RSS per agent (median)`,
      value: sIdle.rss,
      unit: "MiB",
      notes: `VmRSS of the agent process (${sIdle.comm}); min ${fmt(sIdle.rssMin)}, max ` +
        fmt(sIdle.rssMax),
    });
  }
  if (cIdle) {
    rows.add({
      name: `idle, ${n} servers: CPU per server (mean)`,
      value: cIdle.cpu,
      unit: "%",
      goal: goalOf(null, sIdle?.cpu),
      notes: `${idleHow}; utime+stime, one core = 100 %; busiest ${fmt(cIdle.cpuMax)} %; ` +
        `${cIdle.flaps} failed/left lines about one another in the server.logs since start. ` +
        goalNote(null, sIdle?.cpu, "%"),
    });
  }
  if (sIdle) {
    rows.add({
      name: `serf: idle, ${n} agents: CPU per agent (mean)`,
      value: sIdle.cpu,
      unit: "%",
      notes: `${idleHow}; busiest ${fmt(sIdle.cpuMax)} %; ${sIdle.flaps} failed/left ` +
        `reports about one another in the agents' logs since start`,
    });
  }
  if (cIdle) {
    rows.add({
      name: `idle, ${n} servers: bytes/s sent per server (mean)`,
      value: cIdle.sent,
      unit: "B/s",
      goal: goalOf(null, sIdle?.sent),
      notes: `${idleHow}; bytes the host's veth sent (its bridge end's rx counter), all ` +
        `protocols: SWIM over UDP and the mesh's TCP connections (pings every 1 s when ` +
        `quiet); received ${fmt(cIdle.recv)} B/s. ${goalNote(null, sIdle?.sent, "B/s")}`,
    });
  }
  if (sIdle) {
    rows.add({
      name: `serf: idle, ${n} agents: bytes/s sent per agent (mean)`,
      value: sIdle.sent,
      unit: "B/s",
      notes: `${idleHow}; received ${fmt(sIdle.recv)} B/s`,
    });
  }
}

async function detectionAndSoak(
  ctx: SectionContext,
  rows: Rows,
  circuit: System,
  serf: System | null,
  serfWhy: string | null,
  P: ReturnType<typeof params>,
): Promise<void> {
  const n = P.detectHosts;
  ctx.progress(`membership: detection with ${n} hosts`);
  await using lab = await Lab.create(n);
  // Victims: the last hosts, never the first (every replacement joins it).
  const victims = Array.from({ length: P.kills + P.stops }, (_, k) => n - 1 - k);
  const trialsOf = async (sys: System): Promise<Trial[]> => {
    const ring = new Ring(sys, lab);
    try {
      const seed = await ring.add(0, {});
      for (let i = 1; i < n; i++) await ring.add(i, { join: seed });
      await ring.converged();
      await sleep(1000);
      const out: Trial[] = [];
      for (const [k, host] of victims.entries()) {
        const how = k < P.kills ? "kill -9" : "SIGSTOP";
        ctx.progress(`${sys.label}: ${how} of host ${host + 1}`);
        out.push(await detectTrial(ring, host, how));
      }
      return out;
    } finally {
      await ring.stop();
    }
  };
  const sTrials = serf ? await attempt(ctx, rows, "serf: detection", () => trialsOf(serf)) : null;
  const cTrials = await attempt(ctx, rows, "detection", () => trialsOf(circuit));
  const fixedOf = { "kill -9": 1000, "SIGSTOP": 3000 } as const;
  for (const how of ["kill -9", "SIGSTOP"] as const) {
    const c = cTrials?.filter((t) => t.how === how) ?? [];
    const s = sTrials?.filter((t) => t.how === how) ?? [];
    const list = (ts: Trial[]) =>
      ts.map((t) => `${t.all.toFixed(0)} (first ${t.first.toFixed(0)})`).join(", ");
    const what = how === "kill -9"
      ? "the member's process killed with SIGKILL"
      : "the member's process stopped with SIGSTOP (silent: sockets stay open), SIGKILLed after";
    const how2 = `${n} members joined to the first; ${what}; from the signal until every ` +
      `other member no longer lists it; a fresh member replaces it before the next trial; ` +
      `polled every ${POLL_MS} ms`;
    for (const stat of ["median", "worst"] as const) {
      const pick = (ts: Trial[]) =>
        ts.length
          ? (stat === "median" ? median(ts.map((t) => t.all)) : Math.max(...ts.map((t) => t.all)))
          : null;
      const cv = pick(c), sv = pick(s);
      if (cTrials) {
        rows.add({
          name: `${how} detected everywhere (${stat} of ${c.length})`,
          value: cv,
          unit: "ms",
          goal: goalOf(fixedOf[how], sv),
          notes: stat === "median"
            ? `${how2}; trials, ms: ${list(c)}. ${goalNote(fixedOf[how], sv, "ms")}`
            : goalNote(fixedOf[how], sv, "ms"),
        });
      }
      if (sTrials) {
        rows.add({
          name: `serf: ${how} detected everywhere (${stat} of ${s.length})`,
          value: sv,
          unit: "ms",
          notes: stat === "median"
            ? `${how2} (alive in RPC \`members\`); trials, ms: ${list(s)}`
            : "",
        });
      }
    }
  }
  if (!serf) {
    rows.add({ name: "serf: detection (skipped)", value: null, unit: "", notes: serfWhy! });
  }
  rows.flush();

  // The soak, on the same LAN.
  const d = await disturb(ctx, lab);
  const soakHow = `${n} members joined to the first, converged, then left alone for ` +
    `${P.soakS} s; host ${d.loaded + 1} under CPU load: ${d.loadHow}; host ${d.lossy + 1}'s ` +
    `outgoing packets lost at 10 %: ${d.lossHow}`;
  const sSoak = serf
    ? await attempt(
      ctx,
      rows,
      "serf: soak",
      () => soak(serf, lab, n, d, P.soakS, ctx.progress),
    )
    : null;
  const cSoak = await attempt(
    ctx,
    rows,
    "soak",
    () => soak(circuit, lab, n, d, P.soakS, ctx.progress),
  );
  if (cSoak) {
    rows.add({
      name: `false leaves in ${P.soakS} s (load + 10 % loss)`,
      value: cSoak.falseLeaves,
      unit: "events",
      goal: { op: "<=", value: 0 },
      notes: `${soakHow}; \`member X… failed\`/\`left\` lines in every server.log about ` +
        `members that never stopped, summed over servers; ${cSoak.rejoins} rejoins; ` +
        `${cSoak.detail}. goal: 0 (issue)`,
    });
  }
  if (sSoak) {
    rows.add({
      name: `serf: false leaves in ${P.soakS} s (load + 10 % loss)`,
      value: sSoak.falseLeaves,
      unit: "events",
      notes: `same; member-failed/member-leave events from every agent's RPC \`stream\` ` +
        `about members that never stopped; ${sSoak.rejoins} rejoins; ${sSoak.detail}`,
    });
  } else if (!serf) {
    rows.add({ name: "serf: soak (skipped)", value: null, unit: "", notes: serfWhy! });
  }
}

/** Section 10. */
export const membershipSection: Section = { n: 10, title: TITLE, run: membershipBench };
