import { getLogger } from "@logtape/logtape";
import { ManualClock } from "../net/clock.ts";
import { accept, type Connection } from "../net/conn.ts";
import { assertEquals } from "../tests/_assert.ts";
import { DEFAULT_MESH_CONFIG } from "./config.ts";
import { Mesh, type MeshOptions } from "./mesh/mod.ts";
import { MemberTable } from "./membership.ts";

/** Wait for real I/O (dials, accepts) to reach a state; the mesh's own timers run on a manual clock. */
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const url = (port: number, id: string) => `circuit://127.0.0.1:${port}/1/Q${id}`;
/** A member id: one hex digit repeated, so ids sort as their digits. */
const id = (c: string) => c.repeat(16);

/** A port nobody listens on: connections to it are refused. */
function refusedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * A mesh for member 0 on a manual clock, over a stub membership layer that records what
 * the mesh reports.
 *
 * @param options mesh options besides the table, log and clock
 */
function testMesh(options: Partial<MeshOptions> = {}) {
  const table = new MemberTable({ id: id("0"), url: url(1, id("0")), joined: "" });
  const failed: string[] = [], suspected: string[] = [];
  const clock = new ManualClock();
  const mesh = new Mesh({ table, log: getLogger(["circuit", "test"]), clock, ...options });
  mesh.serve({
    membership: {
      state: () => [],
      merge: () => {},
      handleSync: () => [],
      failed: (id) => void failed.push(id),
      suspect: (id) => void suspected.push(id),
    },
    handler: () => Promise.resolve(null),
  });
  return { table, mesh, failed, suspected, clock };
}

const { ringSettleMs, ringMaxWaitMs } = DEFAULT_MESH_CONFIG;

Deno.test("Mesh.check() declares failed a member whose port refuses, and only that one", async () => {
  const { table, mesh, failed, suspected, clock } = testMesh();
  // A port nobody listens on, and one where something accepts but speaks no circuit.
  const gonePort = refusedPort();
  const mute = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepting = (async () => {
    for await (const c of mute) c.close();
  })();
  const deadId = "d".repeat(16), muteId = "e".repeat(16);
  try {
    // Joining dials once the ring settles: the refused dial is the first proof, the
    // garbled one only a suspicion.
    table.admit({ id: deadId, url: url(gonePort, deadId), joined: "" });
    table.admit({ id: muteId, url: url((mute.addr as Deno.NetAddr).port, muteId), joined: "" });
    await clock.advance(ringSettleMs);
    await until(() => failed.length === 1 && suspected.length === 1, "the join dials to fail");
    assertEquals([failed, suspected], [[deadId], [muteId]]);
    // A missed probe with no open connection: the redial finds the refused port again; a
    // port that accepts but fails the handshake proves nothing.
    // Both checks are over when they resolve.
    await Promise.all([mesh.check(deadId), mesh.check(muteId)]);
    await until(() => failed.length === 2, "the redial of the closed port");
    assertEquals(failed, [deadId, deadId]);
  } finally {
    mesh.close();
    mute.close();
    await accepting;
  }
});

Deno.test("Mesh dials only the next members in id order (its watch ring), and moves on when one leaves", async () => {
  // Every port refuses: each dial the mesh makes ends as a failure.
  const { table, mesh, failed: dialed, clock } = testMesh({ watched: 3, ringSettleMs: 20 });
  const dialsOver = () => mesh.queues().Dialing === 0;
  const port = refusedPort();
  try {
    // Admitted out of order, as gossip delivers them: the ring is by id, after ourselves.
    for (const c of ["6", "2", "5", "1", "4", "3"]) {
      table.admit({ id: id(c), url: url(port, id(c)), joined: "" });
    }
    await clock.advance(20);
    await until(() => dialed.length === 3 && dialsOver(), "the ring's three dials");
    // Every dial is over and no ring update is due: nothing else is dialed.
    await clock.advance(ringMaxWaitMs);
    assertEquals(dialed.toSorted(), [id("1"), id("2"), id("3")], "watched first");
    // The first watched member leaves: the ring now reaches the fourth.
    dialed.length = 0;
    table.remove(id("1"), "failed");
    await clock.advance(20);
    await until(() => dialed.includes(id("4")) && dialsOver(), "the next member to be dialed");
    assertEquals(dialed.filter((d) => d > id("4")), [], "members beyond the ring");
  } finally {
    mesh.close();
  }
});

Deno.test("Mesh.checkPort() proves a member gone when its port refuses, without a handshake", async () => {
  // No watch dials: only the check can find out.
  const { table, mesh, failed, clock } = testMesh({ watched: 0 });
  const gonePort = refusedPort();
  // A port that accepts and stays silent, like a live server that has not answered yet.
  const live = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepting = (async () => {
    for await (const c of live) c.close();
  })();
  try {
    table.admit({ id: id("1"), url: url(gonePort, id("1")), joined: "" });
    table.admit({ id: id("2"), url: url((live.addr as Deno.NetAddr).port, id("2")), joined: "" });
    // The ring has been updated (it watches nobody) and no dial is under way.
    await clock.advance(ringMaxWaitMs);
    assertEquals(mesh.queues().Dialing, 0, "dials under way");
    assertEquals(failed, [], "nothing dialed before the check");
    // Both checks are over when they resolve.
    await Promise.all([mesh.checkPort(id("1")), mesh.checkPort(id("2"))]);
    await until(() => failed.length === 1, "the refused port to prove member 1 gone");
    assertEquals(failed, [id("1")]);
  } finally {
    mesh.close();
    live.close();
    await accepting;
  }
});

Deno.test("Mesh closes a connection dialed for calls once it has been idle, and dials again when asked", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const peerUrl = url(port, id("1"));
  const served: Connection[] = [];
  const serving = (async () => {
    for await (const sock of listener) {
      const c = await accept(sock, {
        self: { pid: 1, id: id("1"), url: peerUrl },
        handlerFor: () => () => Promise.resolve("pong"),
      });
      if (c) served.push(c);
    }
  })();
  const { table, mesh, clock } = testMesh({ watched: 0, callIdleMs: 100, retireGraceMs: 10 });
  const dialed: Connection[] = [];
  try {
    table.admit({ id: id("1"), url: peerUrl, joined: "" });
    const first = await mesh.peer(id("1"));
    dialed.push(first);
    assertEquals(await first.mux.request("ping", null), "pong");
    assertEquals(mesh.describe().length, 1, "connected");
    // Swept every callIdleMs / 2: still asked for at the first sweep, idle at the second.
    await clock.advance(50);
    assertEquals(mesh.describe().length, 1, "connected after half the idle time");
    await clock.advance(50);
    await until(() => mesh.describe().length === 0, "the idle connection to close", 2000);
    // Closed after the retire grace.
    await clock.advance(10);
    await first.closed;
    const second = await mesh.peer(id("1"));
    dialed.push(second);
    assertEquals(await second.mux.request("ping", null), "pong", "dialed again");
  } finally {
    mesh.close();
    await Promise.all(dialed.map((c) => c.closed));
    await new Promise((r) => setTimeout(r, 50)); // GOAWAY's flush polling ends
    listener.close();
    await serving;
    for (const c of served) c.close();
    await Promise.all(served.map((c) => c.closed));
  }
});

Deno.test("Mesh joins an announced server after a random wait, and not once gossip made it known", async () => {
  const { table, mesh, clock } = testMesh({ watched: 0, discoverJitterMs: 150 });
  // Counts dials: accepts and hangs up (the join then fails, which is fine here).
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  let accepted = 0;
  const serving = (async () => {
    for await (const c of listener) {
      accepted++;
      c.close();
    }
  })();
  try {
    // Announced, then learned through gossip before the wait is over: never dialed.
    mesh.discovered(url(port, id("1")));
    table.admit({ id: id("1"), url: url(port, id("1")), joined: "" });
    // The wait is over and the join was called off.
    await clock.advance(150);
    assertEquals(mesh.queues().Joining, 0, "joins under way");
    assertEquals(accepted, 0, "dials to a member gossip made known");
    // Announced and still unknown after the wait: dialed once, however often announced.
    mesh.discovered(url(port, id("2")));
    mesh.discovered(url(port, id("2")));
    await clock.advance(150);
    // The join is over (the server hung up) once it no longer counts.
    await until(
      () => accepted === 1 && mesh.queues().Joining === 0,
      "the announced server to be dialed",
      2000,
    );
    assertEquals(accepted, 1, "dials");
  } finally {
    mesh.close();
    listener.close();
    await serving;
  }
});
