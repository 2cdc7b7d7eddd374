/**
 * Membership at scale (issue 21): the per-packet and per-tick paths cost O(1) in the
 * number of members, a member held dead at the incarnation it claims alive at is told so
 * directly, and a member that came back from dead is suspected more patiently for a while.
 */

import { ManualClock } from "../clock.ts";
import { assert, assertEquals } from "./_testing.ts";
import { membershipConfig } from "./config.ts";
import { type Addr, type Alive, decodeMessage, type Message } from "./messages.ts";
import { Memberlist } from "./memberlist.ts";
import { BroadcastQueue } from "./queue.ts";
import { type Member, MemberStates } from "./state.ts";
import { suspicionBounds } from "./suspicion.ts";
import { type PacketTransport, PacketVerifier } from "./transport.ts";

const SELF_ADDR: Addr = { host: "10.0.0.1", port: 7000 };
const addrOf = (i: number): Addr => ({ host: "10.0.1.1", port: 10_000 + i });
const alive = (id: string, i: number, inc: number): Alive => ({
  type: "alive",
  id,
  url: `u-${id}`,
  addr: addrOf(i),
  inc,
  start: 100,
});

function table(clock = new ManualClock(10_000)) {
  const stale: Member[] = [];
  const states = new MemberStates({
    self: { id: "self", url: "u-self", addr: SELF_ADDR, start: 100 },
    config: membershipConfig("test"),
    clock,
    broadcast: () => {},
    stale: (m) => stale.push(m),
  });
  return { clock, states, stale };
}

Deno.test("MemberStates.live() is one cached array until a member changes", () => {
  const { states } = table();
  for (let i = 0; i < 500; i++) states.aliveNode(alive(`m${i}`, i, 1));
  const a = states.live();
  assertEquals(a.length, 500);
  assertEquals(states.liveCount(), 501);
  assert(states.live() === a, "unchanged table, same array (no copy, clone or sort per tick)");
  states.aliveNode(alive("m7", 7, 1)); // stale: no change
  assert(states.live() === a, "stale news changes nothing");
  states.suspectNode({ type: "suspect", id: "m7", inc: 1, from: "m8" });
  const b = states.live();
  assert(b !== a, "a change rebuilds it");
  assertEquals(b.find((m) => m.id === "m7")?.status, "suspect");
  assertEquals(states.accused().map((m) => m.id), ["m7"]);
  states.deadNode({ type: "dead", id: "m7", inc: 1, from: "m8" });
  assertEquals([states.live().length, states.liveCount()], [499, 500]);
  assert(Object.isFrozen(b) && Object.isFrozen(b[0]), "callers cannot corrupt the cache");
});

Deno.test("MemberStates: the address index follows restarts, reaps and bound()", async () => {
  const { states, clock } = table();
  states.aliveNode(alive("old", 1, 1));
  // A newer process at the same address replaces the old one at once.
  states.aliveNode({ ...alive("new", 1, 1), start: 200 });
  assertEquals(states.get("old")?.status, "dead");
  // News about the older process at that address is ignored.
  states.aliveNode({ ...alive("old", 1, 9) });
  assertEquals(states.get("old")?.status, "dead");
  await clock.advance(membershipConfig("test").deadReapMs + 1);
  assertEquals(states.reap(), ["old"]);
  // Our own address, once bound, is ours: nobody else is taken in there.
  states.bound(addrOf(5));
  states.aliveNode(alive("x", 5, 1));
  assertEquals(states.get("x"), undefined);
});

Deno.test("BroadcastQueue.take() looks at what it takes, not at the whole queue", () => {
  const q = new BroadcastQueue({ maxDepth: 4096, retransmitMult: 4 });
  for (let i = 0; i < 2000; i++) q.enqueue(`m${i}`, new Uint8Array(10).fill(i % 256));
  let looked = 0;
  const cost = (b: Uint8Array) => (looked++, b.length);
  const out = q.take(100, 2000, cost);
  assertEquals(out.length, 10);
  assert(looked < 100, `looked at ${looked} of 2000 queued messages for one packet`);
  assertEquals(out[0], new Uint8Array(10).fill(1999 % 256), "newest first");
  // Order still holds across buckets: the least-sent first, newest first among them.
  for (let k = 0; k < 300; k++) q.take(100, 2000);
  q.enqueue("fresh", new Uint8Array(10).fill(7));
  assertEquals(q.take(10, 2000), [new Uint8Array(10).fill(7)]);
});

Deno.test("MemberStates: an alive at the incarnation we hold a member dead at tells it so, at most once per probe interval", async () => {
  const { states, stale, clock } = table();
  states.aliveNode(alive("b", 1, 3));
  states.deadNode({ type: "dead", id: "b", inc: 3, from: "c" });
  states.aliveNode(alive("b", 1, 3)); // say, a peer's push-pull from before the death
  assertEquals(stale.map((m) => [m.id, m.status, m.incarnation]), [["b", "dead", 3]]);
  assertEquals(states.get("b")?.status, "dead", "it still cannot revive it");
  states.aliveNode(alive("b", 1, 3));
  assertEquals(stale.length, 1, "not again within a probe interval");
  await clock.advance(membershipConfig("test").probeIntervalMs);
  states.aliveNode(alive("b", 1, 3));
  assertEquals(stale.length, 2);
  states.aliveNode(alive("b", 1, 2));
  assertEquals(stale.length, 2, "older news is not a sign of life");
  states.aliveNode(alive("b", 1, 4)); // its refutation
  assertEquals(states.get("b")?.status, "alive");
});

/** A transport that records what is sent. */
class RecordingTransport implements PacketTransport {
  sent: { to: Addr; msgs: Message[] }[] = [];
  #verifier = new PacketVerifier(undefined, membershipConfig("test"));
  get addr(): Addr {
    return SELF_ADDR;
  }
  send(to: Addr, bytes: Uint8Array): void {
    const blobs = this.#verifier.verify(bytes) ?? [];
    this.sent.push({ to, msgs: blobs.map((b) => decodeMessage(b)!) });
  }
  listen(): void {}
  close(): Promise<void> {
    return Promise.resolve();
  }
}

Deno.test("Memberlist: a push-pull that says alive a member we hold dead at that incarnation tells the member at once", async () => {
  const clock = new ManualClock(Date.now());
  const transport = new RecordingTransport();
  const ml = new Memberlist({
    self: { id: "self", url: "u-self", addr: SELF_ADDR },
    profile: "test",
    clock,
    transport,
  });
  await ml.start();
  try {
    const b = { id: "b", url: "u-b", addr: addrOf(1), inc: 5, start: 100 };
    ml.merge([{ ...b, status: "alive" }], "c");
    assert(ml.failed("b"), "declared dead");
    transport.sent = [];
    // c's push-pull still holds b alive at 5: it cannot revive b, but b is told, so that
    // if it is alive it refutes (before, only the gossip loop's buddy messages, one random
    // accused member per round, could reach it).
    ml.merge([{ ...b, status: "alive" }], "c");
    const toB = transport.sent.filter((p) => p.to.port === b.addr.port).flatMap((p) => p.msgs);
    assert(
      toB.some((m) => m.type === "dead" && m.id === "b" && m.inc === 5),
      `nothing told b: ${JSON.stringify(transport.sent)}`,
    );
    assertEquals(ml.member("b")?.status, "dead");
  } finally {
    await ml.stop();
  }
});

Deno.test("MemberStates: a member back from dead is suspected flapSuspicionMult times longer for flapWindowMs", async () => {
  const { states, clock } = table();
  const config = membershipConfig("test");
  states.aliveNode(alive("flap", 1, 1));
  states.aliveNode(alive("calm", 2, 1));
  states.deadNode({ type: "dead", id: "flap", inc: 1, from: "x" });
  states.aliveNode(alive("flap", 1, 2)); // it refuted its death: it was alive all along
  const sus = (id: string, inc: number) =>
    states.suspectNode({ type: "suspect", id, inc, from: "x" });
  sus("flap", 2);
  sus("calm", 1);
  // A lone accuser's timeout: the longest, or the shortest when nobody could confirm.
  const lone = () => {
    const b = suspicionBounds(config, states.liveCount());
    return b.k === 0 ? b.minMs : b.maxMs;
  };
  const maxMs = lone();
  await clock.advance(maxMs);
  assertEquals(states.get("calm")?.status, "dead");
  assertEquals(states.get("flap")?.status, "suspect", "damped");
  await clock.advance(maxMs * (config.flapSuspicionMult - 1));
  assertEquals(states.get("flap")?.status, "dead");
  // Once the window is over, it is suspected as anyone.
  states.aliveNode(alive("flap", 1, 3));
  await clock.advance(config.flapWindowMs);
  states.reap();
  sus("flap", 3);
  await clock.advance(lone());
  assertEquals(states.get("flap")?.status, "dead");
});
