import { getLogger } from "@logtape/logtape";
import { ManualClock } from "../../net/clock.ts";
import { assert, assertEquals } from "../../tests/_assert.ts";
import { MemberTable } from "../membership.ts";
import { Mesh } from "./mod.ts";

const id = (c: string) => c.repeat(16);

Deno.test("Mesh.check() proves nothing but a refused port, and makes no handshake for it", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  // The listener reads what a check sends: nothing, the connection is closed at once.
  const received = (async () => {
    const conn = await listener.accept();
    const buf = new Uint8Array(64);
    let total = 0;
    const deadline = setTimeout(() => conn.close(), 3000);
    try {
      for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) total += n;
    } catch {
      // closed by the deadline
    } finally {
      clearTimeout(deadline);
    }
    try {
      conn.close();
    } catch {
      // already closed
    }
    return total;
  })();
  const table = new MemberTable({
    id: id("0"),
    url: `circuit://127.0.0.1:1/1/Q${id("0")}`,
    joined: "",
  });
  const failed: string[] = [], suspected: string[] = [];
  const mesh = new Mesh({ table, log: getLogger(["circuit", "test"]), clock: new ManualClock() });
  mesh.serve({
    membership: {
      state: () => [],
      merge: () => {},
      handleSync: () => [],
      failed: (x) => void failed.push(x),
      suspect: (x) => void suspected.push(x),
    },
    handler: () => Promise.resolve(null),
  });
  try {
    table.admit({ id: id("1"), url: `circuit://127.0.0.1:${port}/1/Q${id("1")}`, joined: "" });
    await mesh.check(id("1"));
    const bytes = await received;
    assertEquals(bytes, 0, "no handshake bytes were sent");
    assert(failed.length === 0 && suspected.length === 0, "an open port proves nothing");
  } finally {
    mesh.close();
    listener.close();
  }
});
