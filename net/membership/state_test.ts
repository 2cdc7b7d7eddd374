import { ManualClock } from "../clock.ts";
import { assert, assertEquals } from "./_testing.ts";
import { membershipConfig } from "./config.ts";
import { type Addr, type Alive, type Broadcast, MAX_INCARNATION } from "./messages.ts";
import { type MemberEvent, MemberStates } from "./state.ts";

const SELF_ADDR: Addr = { host: "10.0.0.1", port: 7000 };
const addrOf = (id: string): Addr => ({ host: "10.0.0.2", port: 7000 + id.charCodeAt(0) });

function alive(id: string, inc: number, over: Partial<Alive> = {}): Alive {
  return { type: "alive", id, url: `u-${id}`, addr: addrOf(id), inc, start: 100, ...over };
}

/** A member table driven by a manual clock, recording broadcasts and events. */
function setup(healthMultiplier = 1) {
  const clock = new ManualClock(10_000);
  const config = membershipConfig("test"); // probe 100 ms, suspicion ×4, max ×4, reap 3 s
  const sent: Broadcast[] = [];
  const events: string[] = [];
  let refuted = 0;
  const accused: string[] = [];
  const states = new MemberStates({
    self: { id: "self", url: "u-self", addr: SELF_ADDR, start: 100 },
    config,
    clock,
    broadcast: (m) => sent.push(m),
    refuted: () => refuted++,
    healthMultiplier: () => healthMultiplier,
    accused: (id) => accused.push(id),
  });
  states.subscribe((e: MemberEvent) =>
    events.push(`${e.type} ${e.member.id}${e.type === "leave" ? ` ${e.reason}` : ""}`)
  );
  return { clock, config, sent, events, states, accused, refutations: () => refuted };
}

Deno.test("aliveNode() adds a member once, with one join event, and keeps the newest incarnation", () => {
  const { states, events, sent } = setup();
  states.aliveNode(alive("a", 1));
  states.aliveNode(alive("a", 1));
  states.aliveNode(alive("a", 2));
  assertEquals(events, ["join a"]);
  assertEquals(states.get("a")?.incarnation, 2);
  assertEquals(sent.map((m) => m.inc), [1, 2], "only news is rebroadcast");
  assertEquals(states.list().map((m) => m.id), ["a", "self"]);
});

Deno.test("suspectNode() of ourselves is refuted by raising our incarnation", () => {
  const { states, sent, refutations } = setup();
  assertEquals(states.self.incarnation, 1);
  states.suspectNode({ type: "suspect", id: "self", inc: 1, from: "a" });
  assertEquals(states.self.incarnation, 2);
  assertEquals(states.self.status, "alive");
  assertEquals(sent.at(-1), { ...states.selfAlive, inc: 2 });
  states.deadNode({ type: "dead", id: "self", inc: 5, from: "a" });
  assertEquals(states.self.incarnation, 6, "above the accusation");
  states.leftNode({ type: "left", id: "self", inc: 6 });
  assertEquals(states.self.incarnation, 7, "nobody else can make us leave");
  assertEquals(refutations(), 3);
  // An accusation older than our incarnation: no new incarnation, but our alive again,
  // for the accuser that missed it.
  states.suspectNode({ type: "suspect", id: "self", inc: 3, from: "b" });
  assertEquals([states.self.incarnation, refutations()], [7, 3]);
  assertEquals(sent.at(-1), states.selfAlive);
});

Deno.test("a higher incarnation wins: a refutation ends a suspicion, a stale alive does not", () => {
  const { states, events } = setup();
  states.aliveNode(alive("a", 1));
  states.suspectNode({ type: "suspect", id: "a", inc: 1, from: "b" });
  assertEquals(states.get("a")?.status, "suspect");
  states.aliveNode(alive("a", 1));
  assertEquals(states.get("a")?.status, "suspect", "same incarnation: stale");
  states.suspectNode({ type: "suspect", id: "a", inc: 0, from: "c" });
  states.aliveNode(alive("a", 2));
  assertEquals(states.get("a")?.status, "alive");
  assertEquals(events, ["join a"], "a suspect is still a member");
});

Deno.test("suspectNode() turns into deadNode() after the suspicion timeout", async () => {
  const { states, events, sent, clock } = setup();
  states.aliveNode(alive("a", 1));
  states.aliveNode(alive("b", 1));
  // n = 3: one other member could confirm, fewer than k = 2, so the minimum applies:
  // 4 × max(1, log10 3) × 100 ms = 400 ms.
  states.suspectNode({ type: "suspect", id: "a", inc: 1, from: "b" });
  await clock.advance(399);
  assertEquals(states.get("a")?.status, "suspect");
  await clock.advance(1);
  assertEquals(states.get("a")?.status, "dead");
  assertEquals(events, ["join a", "join b", "leave a failed"]);
  assertEquals(sent.at(-1), { type: "dead", id: "a", inc: 1, from: "self" });
});

Deno.test("an unhealthy node waits longer before declaring a suspect dead", async () => {
  const { states, clock } = setup(3);
  states.aliveNode(alive("a", 1));
  states.suspectNode({ type: "suspect", id: "a", inc: 1, from: "self" });
  await clock.advance(1199);
  assertEquals(states.get("a")?.status, "suspect", "3 × 400 ms");
  await clock.advance(1);
  assertEquals(states.get("a")?.status, "dead");
});

Deno.test("independent confirmations shorten the suspicion timeout", async () => {
  const { states, clock } = setup();
  for (const id of ["a", "b", "c", "d"]) states.aliveNode(alive(id, 1));
  // n = 5, k = 2: from 1600 ms without confirmation down to 400 ms with two.
  states.suspectNode({ type: "suspect", id: "a", inc: 1, from: "b" });
  states.suspectNode({ type: "suspect", id: "a", inc: 1, from: "b" }); // a duplicate
  await clock.advance(1000);
  assertEquals(states.get("a")?.status, "suspect");
  states.suspectNode({ type: "suspect", id: "a", inc: 1, from: "c" });
  states.suspectNode({ type: "suspect", id: "a", inc: 1, from: "d" });
  await clock.advance(0);
  assertEquals(states.get("a")?.status, "dead");
});

Deno.test("stale news never revives a dead or left member; a newer incarnation does", () => {
  const { states, events } = setup();
  states.aliveNode(alive("a", 1));
  states.aliveNode(alive("b", 1));
  states.deadNode({ type: "dead", id: "a", inc: 1, from: "c" });
  states.leftNode({ type: "left", id: "b", inc: 3 });
  states.aliveNode(alive("a", 1));
  states.suspectNode({ type: "suspect", id: "a", inc: 1, from: "c" });
  states.aliveNode(alive("b", 3));
  assertEquals([states.get("a")?.status, states.get("b")?.status], ["dead", "left"]);
  assertEquals(events, ["join a", "join b", "leave a failed", "leave b left"]);
  // Only the member itself raises its incarnation: a refutation brings it back.
  states.aliveNode(alive("a", 2));
  assertEquals(states.get("a")?.status, "alive");
  assertEquals(events.at(-1), "join a");
});

Deno.test("a member leaves once: dead then left, or left then dead, is one leave event", () => {
  const { states, events } = setup();
  states.aliveNode(alive("a", 1));
  states.aliveNode(alive("b", 1));
  states.deadNode({ type: "dead", id: "a", inc: 1, from: "c" });
  states.leftNode({ type: "left", id: "a", inc: 1 });
  states.leftNode({ type: "left", id: "b", inc: 1 });
  states.deadNode({ type: "dead", id: "b", inc: 1, from: "c" });
  states.leftNode({ type: "left", id: "b", inc: 1 });
  assertEquals(events, ["join a", "join b", "leave a failed", "leave b left"]);
  assertEquals(states.get("a")?.status, "left", "the more precise state is kept");
});

Deno.test("a restart (new id, same address) is accepted at once and the old id marked dead", async () => {
  const { states, events, clock, config } = setup();
  const addr = addrOf("a");
  states.aliveNode(alive("a", 4, { start: 100 }));
  states.aliveNode(alive("a2", 1, { addr, start: 200 }));
  assertEquals(events, ["join a", "leave a failed", "join a2"]);
  assertEquals(states.get("a")?.status, "dead");
  // A slow peer's news about the old process, even at a higher incarnation, changes nothing.
  states.aliveNode(alive("a", 9, { start: 100 }));
  assertEquals(states.get("a")?.status, "dead");
  // Not even after the old id has been reaped and forgotten.
  await clock.advance(config.deadReapMs);
  assertEquals(states.reap(), ["a"]);
  states.aliveNode(alive("a", 10, { start: 100 }));
  assertEquals(states.get("a"), undefined);
  assertEquals(events, ["join a", "leave a failed", "join a2"]);
});

Deno.test("news about an older process at our own address is ignored", () => {
  const { states, events } = setup();
  states.aliveNode(alive("old", 3, { addr: SELF_ADDR, start: 50 }));
  states.aliveNode(alive("clash", 1, { addr: SELF_ADDR, start: 500 }));
  assertEquals(states.get("old"), undefined);
  assertEquals(states.get("clash"), undefined, "we never mark ourselves dead");
  assertEquals(events, []);
});

Deno.test("reap() forgets dead and left members after deadReapMs, never live ones", async () => {
  const { states, clock, config } = setup();
  for (const id of ["a", "b", "c"]) states.aliveNode(alive(id, 1));
  states.deadNode({ type: "dead", id: "a", inc: 1, from: "c" });
  states.leftNode({ type: "left", id: "b", inc: 1 });
  await clock.advance(config.deadReapMs - 1);
  assertEquals(states.reap(), []);
  await clock.advance(1);
  assertEquals(states.reap().sort(), ["a", "b"]);
  assertEquals([states.get("a"), states.get("b")], [undefined, undefined]);
  assertEquals(states.list().map((m) => m.id), ["c", "self"]);
});

Deno.test("leaveSelf() announces our leave; accusations are no longer refuted", () => {
  const { states, sent, refutations } = setup();
  let done = false;
  states.leaveSelf(() => done = true);
  assert(states.leaving);
  assertEquals(states.self.status, "left");
  assertEquals(sent.at(-1), { type: "left", id: "self", inc: 1 });
  states.deadNode({ type: "dead", id: "self", inc: 1, from: "a" });
  assertEquals([states.self.status, refutations()], ["left", 0]);
  assertEquals(states.list().map((m) => m.id), [], "we are no longer a member");
  assert(!done, "done is the queue's to call");
});

Deno.test("close() cancels every suspicion timer", async () => {
  const { states, clock } = setup();
  states.aliveNode(alive("a", 1));
  states.suspectNode({ type: "suspect", id: "a", inc: 1, from: "b" });
  states.close();
  assertEquals(clock.pending, 0);
  await clock.advance(10_000);
  assertEquals(states.get("a")?.status, "suspect");
});

Deno.test("a stale dead is an accusation: it starts or confirms a suspicion, and can be refuted", async () => {
  const { states, clock, events } = setup();
  for (const id of ["a", "b", "c", "d"]) states.aliveNode(alive(id, 1));
  states.aliveNode(alive("a", 3)); // a refuted something; the accusers below missed it
  states.deadNode({ type: "dead", id: "a", inc: 2, from: "b" });
  assertEquals([states.get("a")?.status, states.get("a")?.incarnation], ["suspect", 3]);
  // Two more independent accusers (k = 2) bring the timeout down to its minimum, 400 ms.
  states.deadNode({ type: "dead", id: "a", inc: 2, from: "c" });
  states.deadNode({ type: "dead", id: "a", inc: 1, from: "d" });
  await clock.advance(399);
  assertEquals(states.get("a")?.status, "suspect");
  await clock.advance(1);
  assertEquals(states.get("a")?.status, "dead");
  assertEquals(events.at(-1), "leave a failed");
  // A member that is alive refutes the accusation as any other.
  states.aliveNode(alive("e", 5));
  states.deadNode({ type: "dead", id: "e", inc: 4, from: "b" });
  assertEquals(states.get("e")?.status, "suspect");
  states.aliveNode(alive("e", 6));
  assertEquals(states.get("e")?.status, "alive");
  await clock.advance(10_000);
  assertEquals(states.get("e")?.status, "alive", "the refutation ended the suspicion");
});

Deno.test("a member accused here is reported, so its port can be checked: new suspicions and older death claims", () => {
  const { states, accused } = setup();
  states.aliveNode(alive("a", 2));
  states.aliveNode(alive("b", 1));
  states.aliveNode(alive("c", 1));
  // A dead at an older incarnation starts a suspicion, then confirms it: both reported.
  states.deadNode({ type: "dead", id: "a", inc: 1, from: "x" });
  assertEquals(states.get("a")?.status, "suspect");
  states.deadNode({ type: "dead", id: "a", inc: 1, from: "y" });
  // A new suspicion is reported; a confirmation of it is not a new accusation.
  states.suspectNode({ type: "suspect", id: "b", inc: 1, from: "x" });
  states.suspectNode({ type: "suspect", id: "b", inc: 1, from: "y" });
  // Neither is stale news, an accusation of ourselves, nor a dead at the known incarnation
  // (that one is taken as it is).
  states.suspectNode({ type: "suspect", id: "c", inc: 0, from: "x" });
  states.suspectNode({ type: "suspect", id: "self", inc: 1, from: "x" });
  states.deadNode({ type: "dead", id: "c", inc: 1, from: "x" });
  assertEquals(states.get("c")?.status, "dead");
  assertEquals(accused, ["a", "a", "b"]);
});

Deno.test("an accusation at MAX_INCARNATION cannot keep a live member out: its refutation at the bound wins", async () => {
  const { states, sent, events, clock, config } = setup();
  // Ourselves: accused at the bound, we refute at the bound, never past it.
  states.suspectNode({ type: "suspect", id: "self", inc: MAX_INCARNATION, from: "x" });
  assertEquals(states.self.incarnation, MAX_INCARNATION);
  assert(Number.isSafeInteger(states.self.incarnation));
  assertEquals(sent.at(-1), { ...states.selfAlive, inc: MAX_INCARNATION });
  states.deadNode({ type: "dead", id: "self", inc: MAX_INCARNATION, from: "x" });
  assertEquals([states.self.incarnation, states.self.status], [MAX_INCARNATION, "alive"]);
  // Another member, as the rest of the cluster sees the victim.
  states.aliveNode(alive("a", 1));
  states.suspectNode({ type: "suspect", id: "a", inc: MAX_INCARNATION, from: "x" });
  assertEquals(states.get("a")?.status, "suspect");
  states.aliveNode(alive("a", MAX_INCARNATION));
  assertEquals(states.get("a")?.status, "alive", "the refutation at the bound ends the suspicion");
  states.deadNode({ type: "dead", id: "a", inc: MAX_INCARNATION, from: "x" });
  assertEquals(states.get("a")?.status, "dead");
  states.aliveNode(alive("a", MAX_INCARNATION));
  assertEquals(states.get("a")?.status, "alive", "and revives it after a death at the bound");
  states.leftNode({ type: "left", id: "a", inc: MAX_INCARNATION });
  states.aliveNode(alive("a", MAX_INCARNATION));
  assertEquals(states.get("a")?.status, "alive", "a forged leave at the bound too");
  assertEquals(events, ["join a", "leave a failed", "join a", "leave a left", "join a"]);
  // Below the bound the usual rule holds: an accusation at an incarnation beats an alive.
  states.aliveNode(alive("b", 5));
  states.suspectNode({ type: "suspect", id: "b", inc: 5, from: "x" });
  states.aliveNode(alive("b", 5));
  assertEquals(states.get("b")?.status, "suspect");
  // A member that really failed at the bound is still declared dead: nothing refutes.
  states.suspectNode({ type: "suspect", id: "a", inc: MAX_INCARNATION, from: "x" });
  await clock.advance(config.suspicionMaxTimeoutMult * 4 * 1000);
  assertEquals(states.get("a")?.status, "dead");
  states.aliveNode(alive("a", MAX_INCARNATION - 1));
  assertEquals(states.get("a")?.status, "dead", "older news never revives");
});
