import { ManualClock } from "../clock.ts";
import { assertEquals } from "./_testing.ts";
import { Awareness } from "./awareness.ts";
import type { Addr, Message } from "./messages.ts";
import { ProbeOrder, Prober, type ProbeResult, type ProbeTarget } from "./probe.ts";

const member = (id: string, status: "alive" | "suspect" = "alive"): ProbeTarget => ({
  id,
  addr: { host: "10.0.0.1", port: 7000 + id.charCodeAt(0) },
  incarnation: 3,
  status,
});
const TARGET = member("t");
const HELPERS = [member("h"), member("i")];

/** A prober on a manual clock: interval 1000 ms, timeout 500 ms, two indirect checks. */
function setup(helpers = HELPERS) {
  const clock = new ManualClock();
  const awareness = new Awareness(8);
  const sent: [Addr, Message[]][] = [];
  let seq = 0;
  const prober = new Prober({
    self: "me",
    config: { probeIntervalMs: 1000, probeTimeoutMs: 500, indirectChecks: 2, stallMs: 250 },
    clock,
    awareness,
    nextSeq: () => ++seq,
    send: (to, msgs) => sent.push([to, msgs]),
    helpers: (k, exclude) => helpers.filter((h) => h.id !== exclude).slice(0, k),
  });
  const types = () => sent.map(([to, msgs]) => `${to.port}:${msgs.map((m) => m.type).join("+")}`);
  return { clock, awareness, sent, prober, types };
}

/** Start a probe and capture its result when it ends. */
function start(prober: Prober, target = TARGET) {
  const out: { result?: ProbeResult } = {};
  const done = prober.probe(target).then((r) => out.result = r);
  return { out, done };
}

Deno.test("Prober.probe() ends at a direct ack and improves awareness", async () => {
  const { clock, awareness, prober, sent, types } = setup();
  awareness.apply(2);
  const { out, done } = start(prober);
  assertEquals(types(), [`${TARGET.addr.port}:ping`]);
  await clock.advance(100);
  prober.handleAck({ type: "ack", seq: 1 });
  await done;
  assertEquals(out.result, { outcome: "acked", expectedNacks: 0, nacks: 0 });
  assertEquals(awareness.score, 1);
  assertEquals(sent.length, 1, "no indirect pings");
  assertEquals(clock.pending, 0);
});

Deno.test("Prober.probe() asks helpers after the timeout and takes their forwarded ack", async () => {
  const { clock, prober, types, sent } = setup();
  const { out, done } = start(prober);
  await clock.advance(499);
  assertEquals(types().length, 1);
  await clock.advance(1);
  assertEquals(types().slice(1), ["7104:indirectPing", "7105:indirectPing"]);
  assertEquals(sent[1][1][0], {
    type: "indirectPing",
    seq: 1,
    id: "t",
    addr: TARGET.addr,
    nack: true,
  });
  prober.handleAck({ type: "ack", seq: 1 });
  await done;
  assertEquals(out.result?.outcome, "indirectAcked");
});

Deno.test("Prober.probe() fails at the end of the interval; nacks decide the awareness change", async () => {
  // [nacks received, helpers, awareness after]
  const table: [number, number, number][] = [[2, 2, 0], [1, 2, 1], [0, 2, 2], [0, 0, 1]];
  for (const [nacks, helpers, score] of table) {
    const { clock, prober, awareness } = setup(HELPERS.slice(0, helpers));
    const { out, done } = start(prober);
    await clock.advance(500);
    for (let i = 0; i < nacks; i++) prober.handleNack({ type: "nack", seq: 1 });
    await clock.advance(499);
    assertEquals(out.result, undefined, "still waiting within the interval");
    await clock.advance(1);
    await done;
    assertEquals(out.result, { outcome: "failed", expectedNacks: helpers, nacks });
    assertEquals(awareness.score, score, `${nacks}/${helpers} nacks`);
    assertEquals(clock.pending, 0);
  }
});

Deno.test("Prober.probe() scales its timeout and interval by awareness", async () => {
  const { clock, prober, awareness, types } = setup();
  awareness.apply(1); // × 2
  const { done } = start(prober);
  await clock.advance(999);
  assertEquals(types().length, 1, "timeout is 1000 ms now");
  await clock.advance(1);
  assertEquals(types().length, 3);
  await clock.advance(1000);
  await done;
});

Deno.test("Prober.probe() tells a suspect member that it is suspected", async () => {
  const { prober, sent } = setup();
  const { done } = start(prober, member("t", "suspect"));
  assertEquals(sent[0][1], [
    { type: "suspect", id: "t", inc: 3, from: "me" },
    { type: "ping", seq: 1, id: "t" },
  ]);
  prober.handleAck({ type: "ack", seq: 1 });
  await done;
});

Deno.test("Prober.handlePing() acks pings for us only (not for a previous process here)", () => {
  const { prober, sent } = setup();
  const from = { host: "10.0.0.9", port: 1 };
  prober.handlePing({ type: "ping", seq: 7, id: "me" }, from);
  prober.handlePing({ type: "ping", seq: 8, id: "someone-before-me" }, from);
  assertEquals(sent, [[from, [{ type: "ack", seq: 7 }]]]);
});

Deno.test("Prober.handleIndirectPing() forwards the target's ack under the requester's seq", async () => {
  const { clock, prober, sent } = setup();
  const requester = { host: "10.0.0.9", port: 1 };
  prober.handleIndirectPing(
    { type: "indirectPing", seq: 40, id: "t", addr: TARGET.addr, nack: true },
    requester,
  );
  assertEquals(sent[0], [TARGET.addr, [{ type: "ping", seq: 1, id: "t" }]]);
  prober.handleAck({ type: "ack", seq: 1 });
  assertEquals(sent[1], [requester, [{ type: "ack", seq: 40 }]]);
  await clock.advance(1000);
  assertEquals(sent.length, 2, "no nack after an ack");
  assertEquals(clock.pending, 0);
});

Deno.test("Prober.handleIndirectPing() nacks after 80 % of the probe timeout", async () => {
  const { clock, prober, sent } = setup();
  const requester = { host: "10.0.0.9", port: 1 };
  prober.handleIndirectPing(
    { type: "indirectPing", seq: 40, id: "t", addr: TARGET.addr, nack: true },
    requester,
  );
  await clock.advance(399);
  assertEquals(sent.length, 1);
  await clock.advance(1);
  assertEquals(sent[1], [requester, [{ type: "nack", seq: 40 }]]);
  await clock.advance(100);
  assertEquals(clock.pending, 0, "the relay is forgotten after the probe timeout");
  prober.handleAck({ type: "ack", seq: 1 });
  assertEquals(sent.length, 2, "a late ack is not forwarded");
});

Deno.test("Prober.close() cancels running probes and relays without judging anyone", async () => {
  const { clock, prober, awareness } = setup();
  prober.handleIndirectPing(
    { type: "indirectPing", seq: 40, id: "t", addr: TARGET.addr, nack: true },
    { host: "10.0.0.9", port: 1 },
  );
  const { out, done } = start(prober);
  await clock.advance(600);
  prober.close();
  await done;
  assertEquals(out.result?.outcome, "cancelled");
  assertEquals(awareness.score, 0);
  assertEquals(clock.pending, 0);
  assertEquals((await prober.probe(TARGET)).outcome, "cancelled");
});

Deno.test("ProbeOrder visits every live member once per round, in a fresh order", () => {
  const order = new ProbeOrder();
  const live = ["a", "b", "c"].map((id) => ({ id }));
  const round = () => [0, 1, 2].map(() => order.next(live)!.id).sort();
  assertEquals(round(), ["a", "b", "c"]);
  assertEquals(round(), ["a", "b", "c"]);
  // A member that left is skipped; a new one comes in at the next round.
  const next = [{ id: "a" }, { id: "d" }];
  const seen = new Set([0, 1, 2, 3].map(() => order.next(next)!.id));
  assertEquals([...seen].sort(), ["a", "d"]);
  assertEquals(order.next([]), undefined);
});
