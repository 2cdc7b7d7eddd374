import { assert, assertEquals } from "./_testing.ts";
import { CircuitError } from "../errors.ts";
import { Memberlist } from "./memberlist.ts";
import type { PushPullHook } from "./push_pull.ts";
import type { Addr } from "./messages.ts";
import type { MemberEvent } from "./state.ts";
import { suspicionBounds } from "./suspicion.ts";
import type { MembershipConfig } from "./config.ts";
import { type PacketTransport, UdpTransport } from "./transport.ts";

/** A transport that can be "paused": while paused every packet in or out is dropped. */
class PausableTransport implements PacketTransport {
  paused = false;
  #inner: PacketTransport;
  constructor(inner: PacketTransport) {
    this.#inner = inner;
  }
  get addr(): Addr {
    return this.#inner.addr;
  }
  send(to: Addr, bytes: Uint8Array): void {
    if (!this.paused) this.#inner.send(to, bytes);
  }
  listen(fn: (bytes: Uint8Array, from: Addr) => void): void {
    this.#inner.listen((b, f) => {
      if (!this.paused) fn(b, f);
    });
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}

interface Node {
  ml: Memberlist;
  transport: PausableTransport;
  events: MemberEvent[];
}

const KEY = crypto.getRandomValues(new Uint8Array(32));

function newId(): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(8)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

async function startNode(port = 0, config: Partial<MembershipConfig> = {}): Promise<Node> {
  const transport = new PausableTransport(await UdpTransport.bind({ host: "127.0.0.1", port }));
  const id = newId();
  const ml = new Memberlist({
    self: { id, url: `circuit://127.0.0.1:7000/1/Q${id}`, addr: transport.addr },
    key: KEY,
    profile: "test",
    config,
    transport,
  });
  const events: MemberEvent[] = [];
  ml.subscribe((e) => events.push(e));
  await ml.start();
  return { ml, transport, events };
}

/** Wait until `cond` holds, checking every 10 ms. */
async function waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<number> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - start;
}

const statusIn = (n: Node, id: string) => n.ml.member(id)?.status;

/** No probes and no push-pulls in a test's window: only gossip and direct messages move news. */
const QUIET: Partial<MembershipConfig> = {
  probeIntervalMs: 10_000,
  probeTimeoutMs: 200,
  pushPullIntervalMs: 0,
  pushPullAfterJoinMs: 0,
};

/**
 * Start `n` members into `nodes` (which the caller stops) and join each to all started
 * before it, so they converge without gossip; wait until every one lists `n`.
 */
async function startCluster(
  n: number,
  config: Partial<MembershipConfig>,
  nodes: Node[],
): Promise<Node[]> {
  const mine: Node[] = [];
  for (let i = 0; i < n; i++) {
    const node = await startNode(0, config);
    nodes.push(node);
    if (mine.length > 0) await node.ml.join(mine.map((m) => m.ml.self.addr));
    mine.push(node);
  }
  await waitUntil(() => mine.every((m) => m.ml.members().length === n), 3000, `${n} members`);
  return mine;
}
/** Run `fn` with a list it fills with the nodes it starts; every one is stopped after. */
async function withNodes(fn: (nodes: Node[]) => Promise<void>): Promise<void> {
  const nodes: Node[] = [];
  try {
    await fn(nodes);
  } finally {
    await Promise.all(nodes.map((n) => n.ml.stop()));
  }
}

/** Leave events about anyone not in `expected`: false alarms. */
const falseAlarms = (nodes: Node[], expected: string[]) =>
  nodes.flatMap((n) =>
    n.events.filter((e) => e.type === "leave" && !expected.includes(e.member.id))
  );
const leavesOf = (n: Node, id: string) =>
  n.events.filter((e) => e.type === "leave" && e.member.id === id);

/** The seven members the lifecycle test walks through, and what its steps share. */
interface Trial {
  /** Every member started, in order (a restart is appended). */
  nodes: Node[];
  /** The members' configuration. */
  config: MembershipConfig;
  /** How long detecting a dead member may take, in ms. */
  boundMs: number;
  /** The members other than `x` still running. */
  others(x: Node): Node[];
  /** Stop `n`; it no longer counts among the others. */
  stop(n: Node): Promise<void>;
}

/** Start seven members, not yet joined. */
async function startTrial(): Promise<Trial> {
  const nodes: Node[] = [];
  for (let i = 0; i < 7; i++) nodes.push(await startNode());
  const config = nodes[0].ml.config;
  const stopped = new Set<Node>();
  return {
    nodes,
    config,
    // Detection bound: the dead member is probed within two rounds, then the longest
    // suspicion, plus time for the news to spread.
    boundMs: 2 * nodes.length * config.probeIntervalMs +
      suspicionBounds(config, nodes.length).maxMs + 1000,
    others: (x) => nodes.filter((n) => n !== x && !stopped.has(n)),
    async stop(n) {
      stopped.add(n);
      await n.ml.stop();
    },
  };
}

/** Print every member's events, members by their index, for a failed step. */
function dumpEvents(nodes: Node[]): void {
  const name = (id: string) => nodes.findIndex((n) => n.ml.self.id === id);
  for (const [i, n] of nodes.entries()) {
    console.error(
      i,
      n.events.map((e) => `${e.type} ${name(e.member.id)} ${"reason" in e ? e.reason : ""}`)
        .join("; "),
    );
  }
}

async function joiningThroughOneSeedConverges({ nodes, config }: Trial, seed: Node) {
  await Promise.all(nodes.slice(1).map((n) => n.ml.join([seed.ml.self.addr])));
  await waitUntil(
    () => nodes.every((n) => n.ml.members().length === nodes.length),
    3 * config.pushPullIntervalMs,
    "every member sees all",
  );
}

async function normalOperationRaisesNoFalseAlarm({ nodes }: Trial) {
  await new Promise((res) => setTimeout(res, 2500));
  for (const n of nodes) {
    assertEquals(n.events.filter((e) => e.type === "leave"), []);
    assertEquals(n.ml.members().map((m) => m.status).filter((x) => x !== "alive"), []);
  }
}

async function pausedMemberRefutesInTime({ nodes, others }: Trial, p: Node) {
  const before = p.ml.self.incarnation;
  p.transport.paused = true;
  await waitUntil(
    () => others(p).some((n) => statusIn(n, p.ml.self.id) === "suspect"),
    2000,
    "someone suspects the paused member",
  );
  p.transport.paused = false;
  await waitUntil(
    () => others(p).every((n) => n.ml.member(p.ml.self.id)?.incarnation! > before),
    2000,
    "everyone hears the refutation",
  );
  assert(p.ml.stats().refutations >= 1);
  for (const n of others(p)) assertEquals(statusIn(n, p.ml.self.id), "alive");
  assertEquals(falseAlarms(nodes, []), []);
}

async function pausedMemberDeclaredDeadRefutesLate({ boundMs, others, stop }: Trial, q: Node) {
  q.transport.paused = true;
  const id = q.ml.self.id;
  let suspected = false;
  await waitUntil(
    () => {
      suspected ||= others(q).some((n) => statusIn(n, id) === "suspect");
      return others(q).every((n) => leavesOf(n, id).length === 1);
    },
    boundMs,
    "everyone declares the paused member dead",
  );
  assert(suspected, "the member was suspect before dead");
  for (const n of others(q)) {
    assertEquals(leavesOf(n, id).map((e) => e.type === "leave" && e.reason), ["failed"]);
  }
  assertEquals(falseAlarms(others(q), [id]), []);
  // Resumed after all: it hears that it is held dead, refutes, and joins again.
  q.transport.paused = false;
  await waitUntil(
    () => others(q).every((n) => statusIn(n, id) === "alive"),
    boundMs,
    "everyone hears the late refutation",
  );
  for (const n of others(q)) {
    const mine = n.events.filter((e) => e.member.id === id).map((e) => e.type);
    assertEquals(mine, ["join", "leave", "join"]);
  }
  await stop(q);
}

async function leaveIsSeenAsLeft({ others, stop }: Trial, r: Node) {
  const id = r.ml.self.id;
  await r.ml.leave();
  await stop(r);
  await waitUntil(
    () => others(r).every((n) => statusIn(n, id) === "left"),
    2000,
    "everyone sees the leave",
  );
  for (const n of others(r)) {
    const leaves = leavesOf(n, id);
    assertEquals(leaves.length, 1);
    assertEquals(leaves[0].type === "leave" && leaves[0].reason, "left");
  }
}

/** `gone`: the members already away, whose leave events are expected. */
async function stoppedMemberDeclaredDead(
  { boundMs, others, stop }: Trial,
  s: Node,
  gone: Node[],
) {
  const id = s.ml.self.id;
  await stop(s);
  const took = await waitUntil(
    () => others(s).every((n) => leavesOf(n, id).length === 1),
    boundMs,
    "everyone declares the stopped member dead",
  );
  assert(took <= boundMs);
  for (const n of others(s)) assertEquals(statusIn(n, id), "dead");
  assertEquals(falseAlarms(others(s), [id, ...gone.map((g) => g.ml.self.id)]), []);
}

async function restartReplacesOldId(trial: Trial, u: Node, seed: Node) {
  const { nodes, boundMs, others, stop } = trial;
  const oldId = u.ml.self.id;
  const port = u.ml.self.addr.port;
  await stop(u);
  const restarted = await startNode(port);
  nodes.push(restarted);
  await restarted.ml.join([seed.ml.self.addr]);
  const newId = restarted.ml.self.id;
  const took = await waitUntil(
    () =>
      others(restarted).every((n) =>
        statusIn(n, newId) === "alive" && statusIn(n, oldId) === "dead"
      ),
    2000,
    "everyone sees the new id alive and the old one dead",
  );
  assert(took < boundMs, `took ${took} ms`);
  // Replaced at once (not detected by probing): the old id leaves as the new one joins.
  for (const n of others(restarted)) {
    const names = n.events.map((e) => `${e.type} ${e.member.id}`);
    const i = names.indexOf(`join ${newId}`);
    assertEquals(names[i - 1], `leave ${oldId}`, `events seen by ${n.ml.self.id}`);
  }
  assertEquals(restarted.ml.member(oldId), undefined);
}

Deno.test("Memberlist: a cluster converges, detects failures, leaves and restarts", async (t) => {
  const trial = await startTrial();
  const [seed, p, q, r, s, u] = trial.nodes;
  const step = (name: string, fn: () => Promise<void>) =>
    t.step(name, async () => {
      try {
        await fn();
      } catch (err) {
        dumpEvents(trial.nodes);
        throw err;
      }
    });
  try {
    await step(
      "joining through one seed converges",
      () => joiningThroughOneSeedConverges(trial, seed),
    );
    await step(
      "normal operation raises no false alarm",
      () => normalOperationRaisesNoFalseAlarm(trial),
    );
    await step(
      "a paused member that resumes in time refutes the suspicion",
      () => pausedMemberRefutesInTime(trial, p),
    );
    await step(
      "a paused member is suspected, declared dead, and refutes when it resumes",
      () => pausedMemberDeclaredDeadRefutesLate(trial, q),
    );
    await step("leave() is seen as left", () => leaveIsSeenAsLeft(trial, r));
    await step(
      "a stopped member is declared dead within the bound",
      () => stoppedMemberDeclaredDead(trial, s, [q, r]),
    );
    await step(
      "a restart (new id, same address) replaces the old id at once",
      () => restartReplacesOldId(trial, u, seed),
    );
  } finally {
    await Promise.all(trial.nodes.map((n) => n.ml.stop()));
  }
});

Deno.test("Memberlist.join() fails as unreachable when no seed answers, aborted on signal", async () => {
  const a = await startNode();
  const silent = await UdpTransport.bind({ host: "127.0.0.1", port: 0 });
  try {
    const err = await a.ml.join([silent.addr], { timeoutMs: 50 }).catch((e) => e);
    assert(err instanceof CircuitError && err.code === "unreachable", String(err));
    assert(err.message.includes(`127.0.0.1:${silent.addr.port}`), err.message);
    const ctl = new AbortController();
    const pending = a.ml.join([silent.addr], { signal: ctl.signal }).catch((e) => e);
    ctl.abort();
    const aborted = await pending;
    assert(aborted instanceof CircuitError && aborted.code === "aborted", String(aborted));
    assertEquals(await a.ml.join([a.ml.self.addr]), 0, "joining ourselves is a no-op");
    assertEquals(a.ml.stats().syncs.failed, 2);
  } finally {
    await a.ml.stop();
    await silent.close();
  }
});

Deno.test("Memberlist.join() carries push-pull over the hook when given", async () => {
  const nodes: Memberlist[] = [];
  const byPort = new Map<number, Memberlist>();
  const hook: PushPullHook = (peer, local) =>
    Promise.resolve(byPort.get(peer.port)!.handleSync(local, "hook"));
  for (let i = 0; i < 2; i++) {
    const id = newId();
    const ml = new Memberlist({
      self: { id, url: `circuit://127.0.0.1:7000/1/Q${id}`, addr: { host: "127.0.0.1", port: 0 } },
      profile: "test",
      pushPull: hook,
    });
    await ml.start();
    byPort.set(ml.self.addr.port, ml);
    nodes.push(ml);
  }
  try {
    assertEquals(await nodes[1].join([nodes[0].self.addr]), 1);
    assertEquals(nodes[0].members().length, 2);
    assertEquals(nodes[1].members().length, 2);
    assertEquals(nodes[0].stats().syncs.received, 1);
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
  }
});

Deno.test("Memberlist.start() refuses a second start; stop() is idempotent", async () => {
  const a = await startNode();
  const err = await a.ml.start().catch((e) => e);
  assert(err instanceof CircuitError && err.code === "closed");
  await a.ml.stop();
  await a.ml.stop();
  const again = await a.ml.join([{ host: "127.0.0.1", port: 9 }]).catch((e) => e);
  assert(again instanceof CircuitError && again.code === "closed");
  const s = a.ml.stats();
  assertEquals(s.members, { alive: 1, suspect: 0, dead: 0, left: 0 });
});

Deno.test("Memberlist: a member that missed a join catches up at its next join, not at the periodic sync", async () => {
  // No periodic push-pull: only the exchange after a join can repair what gossip missed.
  // Rare probes: c's silence must not get it, or a and b in its eyes, declared failed on a
  // busy machine (then nobody would gossip to c at all, which is not what this tests).
  const config = { pushPullIntervalMs: 0, probeIntervalMs: 10_000 };
  await withNodes(async (nodes) => {
    const [a, b, c] = await startCluster(3, config, nodes);
    // c hears nothing while d joins and the news of it is gossiped and retired.
    c.transport.paused = true;
    const d = await startNode(0, config);
    nodes.push(d);
    await d.ml.join([a.ml.self.addr]);
    // Not "everyone lists 4": c, silent meanwhile, may already be declared failed.
    await waitUntil(
      () => [a, b].every((n) => statusIn(n, d.ml.self.id) === "alive"),
      3000,
      "d known",
    );
    await new Promise((r) => setTimeout(r, 1500)); // every broadcast about d retired
    c.transport.paused = false;
    // c hears of e (a join at c), then exchanges full state and learns of d too.
    const e = await startNode(0, config);
    nodes.push(e);
    await e.ml.join([a.ml.self.addr]);
    const ms = await waitUntil(
      () => c.ml.members().length === 5,
      3000,
      `c to list 5 (lists ${c.ml.members().length})`,
    );
    assert(c.ml.member(d.ml.self.id)?.status === "alive", "c learned of d");
    console.log(`caught up ${ms} ms after e joined`);
  });
});

Deno.test("Memberlist: news that finds the gossip loop idle goes out at once, not an interval later", async () => {
  // Long gossip interval, no probes or push-pulls in the window: the only quick way for b to
  // hear of c is a's gossip round right after c joined a.
  const config = { ...QUIET, gossipIntervalMs: 400 };
  await withNodes(async (nodes) => {
    const [a, b] = await startCluster(2, config, nodes);
    // The join's broadcasts go out 4 times, one member a round: retired after 1.6 s.
    await new Promise((r) => setTimeout(r, 2500));
    const c = await startNode(0, config);
    nodes.push(c);
    await c.ml.join([a.ml.self.addr]);
    // An idle loop waiting its interval would tell b about 400 ms from now.
    const ms = await waitUntil(() => b.ml.member(c.ml.self.id) !== undefined, 3000, "b hears of c");
    assert(ms < 200, `b heard of c ${ms} ms after the join, not at once`);
  });
});

Deno.test("Memberlist: news queued right after a round goes out a news interval later, not a gossip interval", async () => {
  // As above, the only quick way for b to hear of d is a's gossip. c joins a first, so a's
  // round has just run when d joins: an idle-interval loop would tell b 400 ms later.
  const config = { ...QUIET, gossipIntervalMs: 400, newsIntervalMs: 20 };
  await withNodes(async (nodes) => {
    const [a, b] = await startCluster(2, config, nodes);
    await new Promise((r) => setTimeout(r, 2500)); // the join's broadcasts retire
    const [c, d] = [await startNode(0, config), await startNode(0, config)];
    nodes.push(c, d);
    await c.ml.join([a.ml.self.addr]);
    await waitUntil(() => b.ml.member(c.ml.self.id) !== undefined, 3000, "b hears of c");
    const t0 = performance.now();
    await d.ml.join([a.ml.self.addr]);
    await waitUntil(() => b.ml.member(d.ml.self.id) !== undefined, 3000, "b hears of d");
    const ms = performance.now() - t0;
    assert(ms < 200, `b heard of d ${ms.toFixed(0)} ms after its join, not a news interval later`);
  });
});

Deno.test("Memberlist: a lone member's gossip loop sleeps, though its own news is queued", async () => {
  const a = await startNode(0, { newsIntervalMs: 5 });
  try {
    assert(a.ml.stats().queue.depth > 0, "something is queued");
    await new Promise((r) => setTimeout(r, 500));
    // Looping on a queue nobody can be told would run a round every 5 ms: about 100 here.
    const rounds = a.ml.stats().gossipRounds;
    assert(rounds <= 2, `${rounds} gossip rounds with nobody to tell`);
  } finally {
    await a.ml.stop();
  }
});

Deno.test("Memberlist: news that finds the loop waiting out a buddy interval goes out a news interval later", async () => {
  // a remembers a dead member, so its loop wakes every gossip interval to tell it (400 ms
  // here); the news of d's join must not wait for that round.
  const config = { ...QUIET, gossipIntervalMs: 400, newsIntervalMs: 20, deadReapMs: 60_000 };
  await withNodes(async (nodes) => {
    const [a, , c] = await startCluster(3, config, nodes);
    c.transport.paused = true; // c cannot refute
    assert(a.ml.failed(c.ml.self.id), "a declares c dead");
    await waitUntil(() => a.ml.stats().queue.depth === 0, 3000, "a's news to retire");
    const d = await startNode(0, config);
    nodes.push(d);
    // Right after one of a's buddy rounds, so the next is a whole interval away.
    const rounds = a.ml.stats().gossipRounds;
    while (a.ml.stats().gossipRounds === rounds) await new Promise((r) => setTimeout(r, 1));
    const t0 = performance.now();
    await d.ml.join([a.ml.self.addr]);
    const after = a.ml.stats().gossipRounds;
    await waitUntil(() => a.ml.stats().gossipRounds > after, 3000, "a's next round");
    const ms = performance.now() - t0;
    assert(ms < 200, `a's round with d's join came ${ms.toFixed(0)} ms after it, not at once`);
  });
});

Deno.test("Memberlist: a death proven here is told to every member directly, not only gossiped", async () => {
  // No gossip rounds and no probes in the window: only direct messages can tell b and c.
  const config = { ...QUIET, gossipNodes: 0 };
  await withNodes(async (nodes) => {
    const [a, b, c, d] = await startCluster(4, config, nodes);
    d.transport.paused = true;
    assert(a.ml.failed(d.ml.self.id), "a declares d dead");
    await waitUntil(
      () => [b, c].every((n) => statusIn(n, d.ml.self.id) === "dead"),
      1000,
      "b and c to hear of d's death",
    );
  });
});

Deno.test("Memberlist: members that hear a suspicion probe the suspect at once, out of turn", async () => {
  // Regular probes every 10 s: a probe started within 300 ms of the news is the reaction.
  const config = { probeIntervalMs: 10_000, probeTimeoutMs: 100 };
  await withNodes(async (nodes) => {
    const [a, b, c, d] = await startCluster(4, config, nodes);
    await new Promise((r) => setTimeout(r, 200)); // the start-up probes are under way
    d.transport.paused = true;
    const before = [b, c].map((n) => n.ml.stats().probes.probes);
    a.ml.suspect(d.ml.self.id);
    await waitUntil(
      () => [b, c].every((n, i) => n.ml.stats().probes.probes > before[i]),
      300,
      "b and c to probe the suspect",
    );
  });
});

Deno.test("Memberlist: the admit option filters its UDP socket; refusals show as dropped foreign", async () => {
  const outsider = await UdpTransport.bind({ host: "127.0.0.1", port: 0 });
  const id = newId();
  const ml = new Memberlist({
    self: { id, url: `circuit://127.0.0.1:7000/1/Q${id}`, addr: { host: "127.0.0.1", port: 0 } },
    profile: "test",
    admit: (from) => from.port !== outsider.addr.port,
  });
  try {
    await ml.start();
    for (let i = 0; i < 3; i++) outsider.send(ml.self.addr, new Uint8Array([0x80]));
    await waitUntil(() => ml.stats().packets.dropped.foreign === 3, 2000, "3 foreign drops");
    assertEquals(ml.stats().packets.dropped.malformed, 0, "refused datagrams are not read");
  } finally {
    await ml.stop();
    await outsider.close();
  }
  assertEquals(ml.stats().packets.dropped.foreign, 3, "still counted after stop");
});
