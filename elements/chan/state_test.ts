import fc from "fast-check";
import { assert, assertEquals } from "../../tests/_assert.ts";
import { type ChanEffect, ChanMachine, type MessageInfo } from "./state.ts";

const SMALL: MessageInfo = { size: 10, small: true };
const LARGE: MessageInfo = { size: 1 << 20, small: false };

/** Effects as short strings, for table tests: `grant 1@1`, `fail 3 closed`, … */
function show(effects: ChanEffect[]): string[] {
  return effects.map((e) => {
    switch (e.type) {
      case "grant":
        return `grant ${e.id}@${e.slot}`;
      case "deliver":
        return `deliver ${e.id} [${e.messages}]`;
      case "fail":
        return `fail ${e.id} ${e.failure}`;
      case "cancel":
        return `cancel ${e.slot}`;
      default:
        return `${e.type} ${e.id}`;
    }
  });
}

Deno.test("ChanMachine.send() on a buffered channel admits up to cap, then queues in order", () => {
  const c = new ChanMachine(2);
  const [a, b, d] = [c.id(), c.id(), c.id()];
  assertEquals(show(c.send(a)), ["grant 1@1"]);
  assertEquals(show(c.send(b)), ["grant 2@2"]);
  assertEquals(show(c.send(d)), [], "no room: queued");
  assertEquals(show(c.filled(a, SMALL)), ["done 1"]);
  assertEquals(show(c.filled(b, SMALL)), ["done 2"]);
  assertEquals(c.pending, 2);
  const r = c.id();
  assertEquals(show(c.recv(r)), ["deliver 4 [1]"]);
  assertEquals(show(c.recv(r)), ["deliver 4 [2]"]);
  assertEquals(show(c.acknowledged(r, [1])), ["discard 1", "grant 3@3", "done 4"]);
  assertEquals([c.numSend, c.numRecv], [2, 1]);
});

Deno.test("ChanMachine on CAP 0 admits a sender only for a waiting receiver, and completes it on acknowledgement", () => {
  const c = new ChanMachine(0);
  const [s, r] = [c.id(), c.id()];
  assertEquals(show(c.send(s)), [], "no receiver: the sender waits");
  assertEquals(show(c.recv(r)), ["grant 1@1"], "a receiver admits it");
  assertEquals(show(c.filled(s, SMALL)), ["wake 2"], "the sender still waits");
  assertEquals(show(c.recv(r, { front: true })), ["deliver 2 [1]"]);
  assertEquals(c.numSend, 0);
  assertEquals(show(c.acknowledged(r, [s])), ["discard 1", "done 1", "done 2"]);
  assertEquals([c.numSend, c.numRecv], [1, 1]);
});

Deno.test("ChanMachine.givenBack() puts messages back at the head, in order", () => {
  const c = new ChanMachine(5);
  const ids = [c.id(), c.id(), c.id()];
  for (const s of ids) {
    c.send(s);
    c.filled(s, SMALL);
  }
  const r = c.id();
  assertEquals(show(c.recv(r, { max: 2 })), ["deliver 4 [1,2]"]);
  assertEquals(show(c.givenBack(r, [1, 2])), ["fail 4 receiverGone"]);
  const r2 = c.id();
  assertEquals(show(c.recv(r2, { max: 10 })), ["deliver 5 [1,2,3]"]);
  assertEquals(c.numRecv, 0);
});

Deno.test("ChanMachine.recv() batches only small messages within the batch's bytes", () => {
  const c = new ChanMachine(5);
  for (const info of [SMALL, SMALL, LARGE, SMALL]) {
    const s = c.id();
    c.send(s);
    c.filled(s, info);
  }
  const r = c.id();
  assertEquals(show(c.recv(r, { max: 10 })), ["deliver 5 [1,2]"], "stops before the large one");
  assertEquals(show(c.recv(r, { max: 10 })), ["deliver 5 [3]"], "a large one goes alone");
  const z = new ChanMachine(0);
  const zr = z.id();
  z.recv(zr);
  assertEquals(show(z.recv(zr, { max: 10, front: true })), [], "CAP 0: still waiting");
});

Deno.test("ChanMachine.close() fails waiting senders, then receivers once drained", () => {
  const c = new ChanMachine(1);
  const [a, b, r1, r2, x] = [c.id(), c.id(), c.id(), c.id(), c.id()];
  c.send(a);
  c.send(b);
  assertEquals(show(c.close(x)), ["fail 2 closed", "done 5"]);
  assertEquals(show(c.close(x)), ["fail 5 alreadyClosed"]);
  assertEquals(show(c.send(c.id())), ["fail 6 closed"]);
  assertEquals(show(c.recv(r1)), [], "a message is still being sent");
  assertEquals(show(c.filled(a, SMALL)), ["done 1", "wake 3"]);
  assertEquals(show(c.recv(r1, { front: true })), ["deliver 3 [1]"]);
  assertEquals(show(c.recv(r2)), [], "the message may be given back");
  assertEquals(show(c.acknowledged(r1, [a])), ["discard 1", "fail 4 closed", "done 3"]);
  assertEquals(show(c.recv(c.id())), ["fail 7 closed"]);
});

Deno.test("ChanMachine.scrub() fails waiting calls, stops fills and drops the buffer", () => {
  const c = new ChanMachine(0);
  const [r, s1, s2, s3] = [c.id(), c.id(), c.id(), c.id()];
  c.recv(r);
  c.send(s1); // granted for r
  c.send(s2);
  c.recv(c.id()); // 5: admits s2
  c.filled(s2, SMALL); // wakes r
  c.send(s3);
  assertEquals(show(c.scrub()), [
    "fail 4 aborted",
    "fail 5 aborted",
    "cancel 2",
    "discard 3",
    "fail 3 aborted",
  ]);
  assertEquals(show(c.scrub()), [], "only once");
  assertEquals(show(c.filled(s1, SMALL)), ["discard 2", "fail 2 aborted"]);
  assertEquals(show(c.recv(r, { front: true })), ["fail 1 aborted"]);
  assertEquals(show(c.close(c.id())), ["fail 6 aborted"]);
});

Deno.test("ChanMachine.leave() leaves queues without stealing a turn, and withdraws CAP 0 messages", () => {
  const c = new ChanMachine(0);
  const [r, s, s2] = [c.id(), c.id(), c.id()];
  c.recv(r);
  assertEquals(show(c.send(s)), ["grant 2@2"]);
  assertEquals(show(c.leave(r)), ["fail 1 callerGone"], "s stays admitted, for nobody");
  assertEquals(show(c.send(s2)), [], "no room");
  assertEquals(show(c.filled(s, SMALL)), []);
  assertEquals(show(c.leave(s)), ["discard 2", "fail 2 senderGone"]);
  assertEquals(show(c.leave(s2)), ["fail 3 callerGone"]);
  // A message out for delivery is withdrawn only if it comes back.
  const [s4, r4] = [c.id(), c.id()];
  c.recv(r4);
  c.send(s4);
  c.filled(s4, SMALL);
  assertEquals(show(c.recv(r4, { front: true })), ["deliver 5 [4]"]);
  assertEquals(show(c.leave(s4)), []);
  assertEquals(show(c.givenBack(r4, [s4])), [
    "discard 4",
    "fail 4 senderGone",
    "fail 5 receiverGone",
  ]);
  assertEquals(c.buffered, 0);
});

Deno.test("ChanMachine.send({immediate}) pauses after each grant of a batch until it is answered", () => {
  const c = new ChanMachine(3);
  const [b, later] = [c.id(), c.id()];
  assertEquals(show(c.send(b, { count: 3, immediate: true })), ["grant 1@3"]);
  assertEquals(show(c.send(later)), [], "behind the batch");
  assertEquals(show(c.filled(3, SMALL)), ["done 3", "grant 1@4"]);
  assertEquals(show(c.fillFailed(4)), ["discard 4", "grant 2@2"], "the batch gives up its place");
  assertEquals(c.numSend, 1);
});

Deno.test("ChanMachine.send({waiting: false}) fails a caller that would have to wait", () => {
  const c = new ChanMachine(1);
  assertEquals(show(c.send(c.id(), { waiting: false })), ["grant 1@1"]);
  assertEquals(show(c.send(c.id(), { waiting: false })), ["fail 2 callerGone"]);
  assertEquals(show(c.recv(c.id(), { waiting: false })), ["fail 3 callerGone"]);
});

// ---- Property tests: a random shell drives the machine and checks every effect. ----

/** One step of a random run; `pick` chooses among the calls the step applies to. */
type Step =
  | { t: "send" }
  | { t: "batch"; count: number }
  | { t: "recv"; max: number }
  | { t: "fill"; pick: number; ok: boolean; small: boolean }
  | { t: "answer"; pick: number; ack: boolean }
  | { t: "reask"; pick: number }
  | { t: "leave"; pick: number }
  | { t: "close" }
  | { t: "scrub" };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ t: "send" as const }) },
  {
    weight: 3,
    arbitrary: fc.integer({ min: 1, max: 4 }).map((count) => ({ t: "batch" as const, count })),
  },
  {
    weight: 4,
    arbitrary: fc.integer({ min: 1, max: 3 }).map((max) => ({ t: "recv" as const, max })),
  },
  {
    weight: 4,
    arbitrary: fc.record({ pick: fc.nat(), ok: fc.boolean(), small: fc.boolean() }).map((r) => ({
      t: "fill" as const,
      ...r,
    })),
  },
  {
    weight: 4,
    arbitrary: fc.record({ pick: fc.nat(), ack: fc.boolean() }).map((r) => ({
      t: "answer" as const,
      ...r,
    })),
  },
  { weight: 4, arbitrary: fc.nat().map((pick) => ({ t: "reask" as const, pick })) },
  { weight: 1, arbitrary: fc.nat().map((pick) => ({ t: "leave" as const, pick })) },
);

/** A shell that believes every effect, checking each against the properties. */
class Driver {
  c: ChanMachine;
  /** Every call: senders, receivers, closes. */
  calls = new Set<number>();
  /** The receivers among them. */
  receivers = new Set<number>();
  /** Senders in the order they asked, still waiting for a slot. */
  queued: number[] = [];
  /** Slots still to grant, per sender. */
  left = new Map<number, number>();
  /** Batch senders, which answer each grant at once. */
  batches = new Set<number>();
  /** Granted slots being filled, and whose. */
  filling = new Map<number, number>();
  /** Receivers in the queue, and how many messages each wants. */
  waitingReceivers = new Map<number, number>();
  /** The receivers' queue, in the order they are to be woken. */
  receiverQueue: number[] = [];
  /** Receivers woken, and how many messages each wants. */
  woken = new Map<number, number>();
  /** Deliveries awaiting an answer. */
  out = new Map<number, number[]>();
  /** Messages out for delivery now. */
  outNow = new Set<number>();
  /** CAP 0 senders whose message is filled and whose call still waits. */
  rendezvous = new Set<number>();
  settled = new Set<number>();
  granted = new Set<number>();
  discarded = new Set<number>();
  filled: number[] = [];
  /** The buffer as the rules describe it: filled messages, given-back ones at the head. */
  model: number[] = [];
  firstDelivered: number[] = [];
  consumed = new Set<number>();
  /** `done` effects for messages (a completed send each). */
  messagesDone = 0;

  constructor(cap: number) {
    this.c = new ChanMachine(cap);
  }

  apply(effects: ChanEffect[]): void {
    for (const e of effects) this.#effect(e);
  }

  #settle(id: number): void {
    assert(!this.settled.has(id), `call ${id} settled twice`);
    this.settled.add(id);
    this.rendezvous.delete(id);
    this.waitingReceivers.delete(id);
    this.woken.delete(id);
    const i = this.queued.indexOf(id);
    if (i >= 0) this.queued.splice(i, 1);
    const r = this.receiverQueue.indexOf(id);
    if (r >= 0) this.receiverQueue.splice(r, 1);
  }

  #effect(e: ChanEffect): void {
    switch (e.type) {
      case "grant":
        return this.#grant(e.id, e.slot);
      case "wake":
        assertEquals(e.id, this.receiverQueue.shift(), "woke a receiver out of turn");
        this.woken.set(e.id, this.waitingReceivers.get(e.id)!);
        this.waitingReceivers.delete(e.id);
        return;
      case "deliver":
        assert(e.messages.length > 0, "an empty delivery");
        assertEquals(e.messages, this.model.slice(0, e.messages.length), "not from the head");
        this.model.splice(0, e.messages.length);
        for (const m of e.messages) {
          assert(!this.outNow.has(m), `message ${m} out to two receivers`);
          assert(!this.discarded.has(m), `message ${m} delivered after it left`);
          this.outNow.add(m);
          if (!this.firstDelivered.includes(m)) this.firstDelivered.push(m);
        }
        this.waitingReceivers.delete(e.id);
        this.receiverQueue = this.receiverQueue.filter((r) => r !== e.id);
        this.out.set(e.id, e.messages);
        return;
      case "fail":
        // After close, a receiver fails only once nothing more can come.
        if (e.failure === "closed" && this.receivers.has(e.id)) {
          const left = this.model.length + this.outNow.size + this.filling.size;
          assertEquals(left, 0, "a receiver failed closed while messages may still come");
        }
        // falls through
      case "done":
        if (e.type === "done" && this.granted.has(e.id)) this.messagesDone++;
        if (this.calls.has(e.id)) this.#settle(e.id);
        return;
      case "cancel":
        assert(this.filling.has(e.slot), `canceled ${e.slot}, not filling`);
        return;
      case "discard":
        assert(!this.discarded.has(e.id), `message ${e.id} discarded twice`);
        assert(!this.outNow.has(e.id), `message ${e.id} discarded while out`);
        this.discarded.add(e.id);
        if (this.model.includes(e.id)) this.model.splice(this.model.indexOf(e.id), 1);
        return;
    }
  }

  #grant(id: number, slot: number): void {
    assert(!this.c.closed && !this.c.aborted, "a grant after close or scrub");
    // Admission in the order asked: nobody who asked earlier still waits.
    assertEquals(this.queued[0], id, "a grant skipped a sender queued before it");
    assert(!this.granted.has(slot), `slot ${slot} granted twice`);
    this.granted.add(slot);
    const left = this.left.get(id)! - 1;
    this.left.set(id, left);
    if (left === 0) this.queued.shift();
    if (!this.batches.has(id)) {
      this.filling.set(slot, id);
      return;
    }
    // A batch in memory answers at once; now and then its store fails and it stops.
    if (slot % 7 === 0) {
      this.#settle(id);
      return this.apply(this.c.fillFailed(slot));
    }
    if (left === 0) this.#settle(id);
    this.filled.push(slot);
    if (!this.c.aborted) this.model.push(slot);
    this.apply(this.c.filled(slot, SMALL));
  }

  step(s: Step): void {
    const c = this.c;
    const pick = <T>(xs: T[], n: number): T | undefined => xs[n % Math.max(1, xs.length)];
    switch (s.t) {
      case "send":
      case "batch": {
        const id = c.id();
        const batch = s.t === "batch" && c.cap > 0;
        this.calls.add(id);
        this.queued.push(id);
        this.left.set(id, batch ? s.count : 1);
        if (batch) this.batches.add(id);
        return this.apply(c.send(id, { count: this.left.get(id), immediate: batch }));
      }
      case "recv": {
        const id = c.id();
        this.calls.add(id);
        this.receivers.add(id);
        this.waitingReceivers.set(id, s.max);
        this.receiverQueue.push(id); // until it is delivered to or fails
        return this.apply(c.recv(id, { max: s.max }));
      }
      case "fill": {
        const slot = pick([...this.filling.keys()], s.pick);
        if (slot === undefined) return;
        const sender = this.filling.get(slot)!;
        this.filling.delete(slot);
        if (!s.ok) {
          this.#settle(sender);
          return this.apply(c.fillFailed(slot));
        }
        this.filled.push(slot);
        if (!c.aborted) this.model.push(slot);
        if (c.cap === 0) this.rendezvous.add(sender);
        return this.apply(c.filled(slot, s.small ? SMALL : LARGE));
      }
      case "answer": {
        const id = pick([...this.out.keys()], s.pick);
        if (id === undefined) return;
        const messages = this.out.get(id)!;
        this.out.delete(id);
        for (const m of messages) this.outNow.delete(m);
        if (s.ack && !c.aborted) { for (const m of messages) this.consumed.add(m); }
        const back = !s.ack && !c.aborted;
        this.apply(s.ack ? c.acknowledged(id, messages) : c.givenBack(id, messages));
        // Given back: to the head, in order, but for withdrawn ones.
        if (back) this.model.unshift(...messages.filter((m) => !this.discarded.has(m)));
        assert(this.settled.has(id), `receiver ${id} not settled by its answer`);
        return;
      }
      case "reask": {
        const id = pick([...this.woken.keys()], s.pick);
        if (id === undefined) return;
        const max = this.woken.get(id)!;
        this.woken.delete(id);
        this.waitingReceivers.set(id, max);
        this.receiverQueue.unshift(id);
        return this.apply(c.recv(id, { max, front: true }));
      }
      case "leave": {
        const waiting = [...this.queued, ...this.waitingReceivers.keys(), ...this.rendezvous];
        const id = pick(waiting, s.pick);
        if (id !== undefined) this.apply(c.leave(id));
        return;
      }
      case "close": {
        const id = c.id();
        this.calls.add(id);
        return this.apply(c.close(id));
      }
      case "scrub":
        this.apply(c.scrub());
        assertEquals(this.model, [], "scrub left messages");
        return;
    }
  }

  /** Scrub, then answer everything still under way until nothing is. */
  finish(): void {
    this.apply(this.c.scrub());
    for (let i = 0; i < 10_000; i++) {
      if (this.filling.size > 0) this.step({ t: "fill", pick: 0, ok: i % 2 === 0, small: true });
      else if (this.out.size > 0) this.step({ t: "answer", pick: 0, ack: i % 2 === 0 });
      else if (this.woken.size > 0) this.step({ t: "reask", pick: 0 });
      else return;
    }
    throw new Error("the run did not settle");
  }
}

const runArb = fc.record({
  cap: fc.integer({ min: 0, max: 3 }),
  steps: fc.array(stepArb, { maxLength: 80, size: "max" }),
  /** After which step the channel is closed, if it is. */
  closeAt: fc.option(fc.nat({ max: 80 })),
  /** After which step it is scrubbed, if it is (else only at the end). */
  scrubAt: fc.option(fc.nat({ max: 100 })),
});

Deno.test("ChanMachine property: exactly-once, one receiver at a time, FIFO, counts, and every spool freed", () => {
  fc.assert(
    fc.property(runArb, ({ cap, steps, closeAt, scrubAt }) => {
      const d = new Driver(cap);
      for (const [i, s] of steps.entries()) {
        d.step(s);
        if (i === closeAt) d.step({ t: "close" });
        if (i === scrubAt) d.step({ t: "scrub" });
      }
      // Counts match what the effects said.
      assertEquals(d.c.numRecv, d.consumed.size, "NumRecv");
      assertEquals(d.c.numSend, d.messagesDone, "NumSend");
      // First deliveries follow the order messages were filled in.
      const order = d.filled.filter((m) => d.firstDelivered.includes(m));
      assertEquals(d.firstDelivered, order, "first deliveries out of fill order");
      assertEquals(d.c.buffered, d.model.length, "buffered");
      d.finish();
      // Every call settled; every slot granted was freed once; nothing consumed twice.
      for (const id of d.calls) assert(d.settled.has(id), `call ${id} never settled`);
      assertEquals([...d.granted].filter((s) => !d.discarded.has(s)), [], "spools never freed");
      assertEquals(d.c.pending, 0);
    }),
    { numRuns: 500 },
  );
});

Deno.test("ChanMachine property: with no receiver, exactly cap messages are admitted, the rest wait", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 12 }), (cap, n) => {
      const c = new ChanMachine(cap);
      let grants = 0;
      for (let i = 0; i < n; i++) {
        const id = c.id();
        for (const e of c.send(id)) if (e.type === "grant") grants++;
        if (i % 2 === 0) c.filled(id, SMALL); // filled or still filling: room is taken alike
      }
      assertEquals(grants, Math.min(cap, n));
      assertEquals(c.waiting.senders, Math.max(0, n - cap));
    }),
  );
});

Deno.test("ChanMachine property: each acknowledgement admits exactly one more waiting sender", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 10 }), (cap, extra) => {
      const c = new ChanMachine(cap);
      const senders = Array.from({ length: cap + extra }, () => c.id());
      const granted: number[] = [];
      const run = (effects: ChanEffect[]) => {
        for (const e of effects) {
          if (e.type === "grant") {
            granted.push(e.id);
            run(c.filled(e.slot, SMALL));
          }
        }
      };
      for (const s of senders) run(c.send(s));
      assertEquals(granted, senders.slice(0, cap));
      for (let k = 1; k <= extra; k++) {
        const r = c.id();
        const d = c.recv(r).find((e) => e.type === "deliver")!;
        assert(d?.type === "deliver");
        run(c.acknowledged(r, d.messages));
        assertEquals(granted, senders.slice(0, cap + k), "in the order they asked");
      }
    }),
  );
});

Deno.test("ChanMachine property: on CAP 0 a send completes only with its message's acknowledgement", () => {
  fc.assert(
    fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 20 }), (acks) => {
      const c = new ChanMachine(0);
      let done = 0;
      for (const ack of acks) {
        const [s, r] = [c.id(), c.id()];
        assertEquals(c.send(s), [], "a rendezvous sender waits for a receiver");
        assertEquals(show(c.recv(r)), [`grant ${s}@${s}`]);
        assertEquals(show(c.filled(s, SMALL)), [`wake ${r}`]);
        c.recv(r, { front: true });
        const effects = ack ? c.acknowledged(r, [s]) : c.givenBack(r, [s]);
        if (ack) done++;
        assertEquals(effects.some((e) => e.type === "done" && e.id === s), ack);
        if (!ack) c.leave(s); // the sender gives up: its message is withdrawn
        assertEquals(c.numSend, done);
      }
      assertEquals(c.buffered, 0);
    }),
  );
});

Deno.test("ChanMachine property: after close, everything buffered is still delivered, then recv fails", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 6 }), (cap, n) => {
      const c = new ChanMachine(cap);
      const sent: number[] = [];
      for (let i = 0; i < Math.min(n, cap); i++) {
        const s = c.id();
        c.send(s);
        c.filled(s, SMALL);
        sent.push(s);
      }
      c.close(c.id());
      const got: number[] = [];
      for (;;) {
        const r = c.id();
        const [e] = c.recv(r);
        if (e.type === "fail") {
          assertEquals(e.failure, "closed");
          break;
        }
        assert(e.type === "deliver");
        got.push(...e.messages);
        c.acknowledged(r, e.messages);
      }
      assertEquals(got, sent);
    }),
  );
});
