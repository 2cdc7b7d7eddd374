import { ManualClock } from "../clock.ts";
import { assert, assertEquals } from "./_testing.ts";
import { CircuitError } from "../errors.ts";
import { membershipConfig } from "./config.ts";
import { type Addr, encodeMessage, type MemberRecord, type Message } from "./messages.ts";
import { mergeRemoteState, PushPull, pushPullIntervalMs, syncChunks } from "./push_pull.ts";
import { MemberStates } from "./state.ts";
import { messageCost } from "./transport.ts";

const CONFIG = membershipConfig("test");

function record(i: number, status: MemberRecord["status"] = "alive"): MemberRecord {
  const id = i.toString(16).padStart(16, "0");
  const addr = { host: "10.1.2.3", port: 10_000 + i };
  return { id, url: `circuit://10.1.2.3:7000/4242/Q${id}`, addr, inc: 3, start: 1, status };
}

function states(id: string, port: number): MemberStates {
  return new MemberStates({
    self: { id, url: `u-${id}`, addr: { host: "10.0.0.1", port }, start: 1 },
    config: CONFIG,
    clock: new ManualClock(),
    broadcast: () => {},
  });
}

Deno.test("pushPullIntervalMs() grows only above 32 members", () => {
  // [n, interval]
  const table: [number, number][] = [[1, 30_000], [32, 30_000], [33, 60_000], [64, 60_000], [
    65,
    90_000,
  ], [1024, 180_000]];
  for (const [n, want] of table) assertEquals(pushPullIntervalMs(30_000, n), want, `n=${n}`);
});

Deno.test("syncChunks() splits a state into chunks that fit, only the first asking a reply", () => {
  const records = Array.from({ length: 100 }, (_, i) => record(i));
  const chunks = syncChunks(records, { seq: 9, answer: false, budgetBytes: 1300 });
  assert(chunks.length > 5, `${chunks.length} chunks`);
  for (const c of chunks) assert(messageCost(encodeMessage(c)) <= 1300);
  assertEquals(chunks.map((c) => c.reply), chunks.map((_, i) => i === 0));
  assertEquals(chunks.flatMap((c) => c.records), records);
  const answer = syncChunks(records, { seq: 9, answer: true, budgetBytes: 1300 });
  assert(answer.every((c) => !c.reply && c.answer && c.seq === 9));
  assertEquals(syncChunks([], { seq: 1, answer: false, budgetBytes: 1300 }).length, 1);
});

Deno.test("mergeRemoteState() takes a peer's dead as suspect and its left as left", () => {
  const s = states("self", 1);
  const [a, b, c, d] = [0, 1, 2, 3].map((i) => record(i));
  mergeRemoteState(s, [a, b, c], "peer");
  mergeRemoteState(s, [{ ...a, status: "dead" }, { ...b, status: "left" }], "peer");
  mergeRemoteState(s, [{ ...d, status: "suspect" }, { ...record(4), status: "dead" }], "peer");
  const status = (r: MemberRecord) => s.get(r.id)?.status;
  assertEquals([a, b, c, d, record(4)].map(status), [
    "suspect",
    "left",
    "alive",
    "suspect",
    undefined,
  ]);
  s.close();
});

/** Two PushPull ends wired through an in-memory network. */
function pair(options: { drop?: boolean } = {}) {
  const addrs: Addr[] = [{ host: "10.0.0.1", port: 1 }, { host: "10.0.0.2", port: 2 }];
  const ends: PushPull[] = [];
  const tables = [states("aaaaaaaaaaaaaaaa", 1), states("bbbbbbbbbbbbbbbb", 2)];
  let seq = 0;
  for (const i of [0, 1]) {
    ends.push(
      new PushPull({
        state: tables[i],
        config: CONFIG,
        keyed: true,
        nextSeq: () => ++seq,
        send: (to: Addr, msgs: Message[]) => {
          if (options.drop) return;
          const peer = ends[to.port - 1];
          for (const m of msgs) {
            if (m.type === "sync") queueMicrotask(() => peer.handleSync(m, addrs[i]));
          }
        },
      }),
    );
  }
  for (let i = 0; i < 40; i++) mergeRemoteState(tables[1], [record(i)], "x");
  return { addrs, ends, tables };
}

Deno.test("PushPull.exchange() over UDP chunks merges both ways", async () => {
  const { addrs, ends, tables } = pair();
  await ends[0].exchange(addrs[1]);
  assertEquals(tables[0].liveCount(), 42);
  assertEquals(tables[1].liveCount(), 42);
  assertEquals(ends[0].stats, { sent: 1, received: 0, failed: 0 });
  assertEquals(ends[1].stats, { sent: 0, received: 1, failed: 0 });
  tables.forEach((t) => t.close());
});

Deno.test("PushPull.exchange() fails with timeout when nobody answers, closed when stopped", async () => {
  const { addrs, ends } = pair({ drop: true });
  const err = await ends[0].exchange(addrs[1], { timeoutMs: 20 }).catch((e) => e);
  assert(err instanceof CircuitError && err.code === "timeout", String(err));
  const pending = ends[0].exchange(addrs[1]).catch((e) => e);
  ends[0].close();
  const closed = await pending;
  assert(closed instanceof CircuitError && closed.code === "closed", String(closed));
  assertEquals(ends[0].stats.failed, 2);
});

Deno.test("PushPull.exchange() uses the hook when given; the peer answers with handleRemote()", async () => {
  const a = states("aaaaaaaaaaaaaaaa", 1);
  const b = states("bbbbbbbbbbbbbbbb", 2);
  const served = new PushPull({
    state: b,
    config: CONFIG,
    keyed: false,
    nextSeq: () => 1,
    send: () => {},
  });
  const peers: Addr[] = [];
  const client = new PushPull({
    state: a,
    config: CONFIG,
    keyed: false,
    nextSeq: () => 1,
    send: () => {
      throw new Error("no UDP with a hook");
    },
    hook: (peer, local, { signal }) => {
      peers.push(peer);
      assert(!signal.aborted);
      return Promise.resolve(served.handleRemote(local, "aaaaaaaaaaaaaaaa"));
    },
  });
  await client.exchange({ host: "10.0.0.2", port: 2 });
  assertEquals(peers, [{ host: "10.0.0.2", port: 2 }]);
  assertEquals([a.liveCount(), b.liveCount()], [2, 2]);
});
