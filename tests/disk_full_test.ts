/**
 * A full disk and a flood of channel messages: exactly-once holds when neither `ops.log`
 * nor the spool can be written (issue 18, item 4), and the memory that channel messages
 * hold is bounded across the whole server (item 9).
 *
 * The full-disk cases run a real server whose var directory is on a 16 MiB tmpfs this
 * test mounts (root only) and fills.
 *
 * @module
 */

import { connect } from "../mod.ts";
import { CircuitError } from "../net/errors.ts";
import { SPOOL_MEMORY_BUDGET_BYTES } from "../elements/spool.ts";
import { assert, assertEquals, assertOneLineError, cli, Server, skipTest } from "./_harness.ts";
import { Tmpfs } from "./_tmpfs.ts";

/** The tmpfs size the full-disk cases run on. */
const TMPFS_SIZE = "16m";

async function opLines(varDir: string): Promise<Array<Record<string, string>>> {
  const text = await Deno.readTextFile(`${varDir}/ops.log`);
  return text.split("\n").filter((l) => l).map((l) => JSON.parse(l));
}

function pattern(i: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let j = 0; j < size; j += 4096) b[j] = (i + j / 4096) & 0xff;
  new DataView(b.buffer).setUint32(0, i);
  b[size - 1] = i & 0xff;
  return b;
}

function samePattern(got: Uint8Array, i: number, size: number): boolean {
  if (got.length !== size) return false;
  const want = pattern(i, size);
  for (let j = 0; j < size; j++) if (got[j] !== want[j]) return false;
  return true;
}

const noTmpfs = await Tmpfs.unavailable();

type Counts = { NumSend: number; NumRecv: number };

const HAPPENED =
  "disk full: mkchan, send and recv that happened are reported done, each once, and ops.log catches up";
if (noTmpfs) skipTest(HAPPENED, noTmpfs);
else {
  Deno.test(HAPPENED, async () => {
    await using fs = await Tmpfs.mount(TMPFS_SIZE) as Tmpfs;
    const varDir = `${fs.path}/var`;
    await using s = await Server.start({ varDir });
    await using client = await connect(s.url);
    // Nothing fits any more, not even the first line of ops.log.
    const filler = await fs.fill();
    await assertRejects(() => Deno.writeTextFile(`${fs.path}/probe`, "x"), "the tmpfs is full");

    // mkchan: the channel is made, and the call says so.
    const ch = await client.walk(`${s.path}/c`).makeChan(10);
    assertEquals((await client.walk(s.path).ls()).map((e) => e.path), [`${s.path}/c`]);

    // Sends held in memory are admitted once and reported done (library and CLI).
    await ch.send("one");
    const sent = await cli(["send", "-d", s.url, `${s.path}/c`], { stdin: "two" });
    assertEquals([sent.code, sent.stderr], [0, ""], "CLI send on a full disk");
    assertEquals(
      [(await ch.peek() as Counts).NumSend, (await ch.peek() as Counts).NumRecv],
      [2, 0],
      "after two sends",
    );

    // Each recv gets its message and consumes it once (library and CLI).
    assertEquals(new TextDecoder().decode(await ch.recv()), "one");
    const got = await cli(["recv", "-d", s.url, `${s.path}/c`]);
    assertEquals([got.code, got.stdout, got.stderr], [0, "two", ""], "CLI recv on a full disk");
    const q = await ch.peek() as Counts;
    assertEquals([q.NumSend, q.NumRecv], [2, 2], "each message consumed once");

    // Room again: the lines held back are written, in order, before the next one.
    await Deno.remove(filler);
    await ch.close();
    const lines = await opLines(varDir);
    assertEquals(
      lines.map((l) => [l.op, l.path, l.outcome]),
      [
        ["make chan", `${s.path}/c`, "ok"],
        ["sendMany", `${s.path}/c`, "ok"],
        ["send", `${s.path}/c`, "ok"],
        ["recvMany", `${s.path}/c`, "ok"],
        ["recv", `${s.path}/c`, "ok"],
        ["close", `${s.path}/c`, "ok"],
      ],
      "ops.log after the disk has room",
    );
  });
}

const SPOOL_FULL =
  "disk full: a message that needs the spool is refused as a full disk and admits nothing";
if (noTmpfs) skipTest(SPOOL_FULL, noTmpfs);
else {
  Deno.test(SPOOL_FULL, async () => {
    await using fs = await Tmpfs.mount(TMPFS_SIZE) as Tmpfs;
    const varDir = `${fs.path}/var`;
    await using s = await Server.start({ varDir });
    await using client = await connect(s.url);
    const ch = await client.walk(`${s.path}/c`).makeChan(10);
    const d = await client.walk(`${s.path}/d`).makeChan(100);
    const filler = await fs.fill();

    // A large message must go to the spool: it fails as a full disk and is not admitted.
    const big = pattern(7, 3 * 1024 * 1024);
    const err = await assertRejects(() => ch.send(big), "a 3 MiB send on a full disk");
    assert(err instanceof CircuitError, `expected a CircuitError, got ${err}`);
    assertEquals(
      [err.code, err.message],
      ["busy", `Sending to ${s.path}/c failed: the server's disk is full (ENOSPC)`],
    );
    const viaCli = await cli(["send", "-d", s.url, `${s.path}/c`], { stdin: big });
    assertOneLineError(viaCli, /the server's disk is full \(ENOSPC\)/);
    const p = await ch.peek() as Counts;
    assertEquals([p.NumSend, p.NumRecv], [0, 0], "the failed sends admitted nothing");

    // Small messages stay in memory up to the server's budget for messages; past it they
    // need the disk too, and a batch that cannot be spooled admits nothing.
    const mib = 1024 * 1024;
    const budget = SPOOL_MEMORY_BUDGET_BYTES / mib;
    for (let i = 0; i < budget; i++) await d.send(pattern(i, mib));
    const small = await assertRejects(() => d.send("small"), "a small send past the budget");
    assert(small instanceof CircuitError, `expected a CircuitError, got ${small}`);
    assertEquals(
      [small.code, small.message],
      ["busy", `Sending to ${s.path}/d failed: the server's disk is full (ENOSPC)`],
    );
    let pd = await d.peek() as Counts;
    assertEquals([pd.NumSend, pd.NumRecv], [budget, 0], "the refused batch admitted nothing");
    assert(samePattern(await d.recv(), 0, mib), "the first message of d");
    await d.send("small"); // room in memory again
    for (let i = 1; i < budget; i++) assert(samePattern(await d.recv(), i, mib), `message ${i}`);
    assertEquals(new TextDecoder().decode(await d.recv()), "small");
    pd = await d.peek() as Counts;
    assertEquals([pd.NumSend, pd.NumRecv], [budget + 1, budget + 1], "d's counts");

    // Room again: every operation is in ops.log, the refused ones as such.
    await Deno.remove(filler);
    await ch.close();
    const lines = await opLines(varDir);
    const refused = lines.filter((l) => l.outcome !== "ok");
    assertEquals(
      refused.map((l) => [l.op, l.path, l.outcome]),
      [
        ["send", `${s.path}/c`, `error: ${err.message}`],
        ["send", `${s.path}/c`, `error: ${err.message}`],
        ["sendMany", `${s.path}/d`, `error: ${small.message}`],
      ],
      "refused operations in ops.log",
    );
    assertEquals(lines.length, 2 + 2 + budget + 1 + 1 + (budget + 1) + 1, "lines in ops.log");
    // Nothing of the refused messages is left in the spool.
    const spool = [...Deno.readDirSync(varDir)].some((e) => e.name === "spool")
      ? [...Deno.readDirSync(`${varDir}/spool`)].map((e) => e.name)
      : [];
    assertEquals(spool, [], "spool files left");
  });
}

async function assertRejects(fn: () => Promise<unknown>, what: string): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error(`${what} succeeded; it should have failed`);
}

Deno.test("spool memory: 300 one-MiB messages to channels nobody reads stay out of memory and come back intact", async () => {
  await using s = await Server.start();
  await using client = await connect(s.url);
  const rss = async () => ((await client.walk(s.path).stk()).Memory as { rss: number }).rss;
  const size = 1024 * 1024;
  // Three channels, so that the bound is the server's, not each channel's.
  const chans = await Promise.all(
    [0, 1, 2].map((i) => client.walk(`${s.path}/c${i}`).makeChan(200)),
  );
  const before = await rss();
  let peak = before;
  for (let i = 0; i < 300; i++) {
    await chans[i % 3].send(pattern(i, size));
    if (i % 25 === 24) peak = Math.max(peak, await rss());
  }
  peak = Math.max(peak, await rss());
  const growth = (peak - before) / size;
  assert(growth < 200, `server rss grew by ${growth.toFixed(0)} MiB for 300 MiB of messages`);
  // With the budget taken, even small messages go to files: batches of them still go and
  // come back whole, each once, in order.
  const small = await client.walk(`${s.path}/small`).makeChan(100);
  const texts = Array.from({ length: 40 }, (_, i) => `small ${i} `.repeat(50 + i));
  await Promise.all(texts.map((t) => small.send(t)));
  assertEquals(
    [...Deno.readDirSync(`${s.varDir}/spool`)].length,
    300 - SPOOL_MEMORY_BUDGET_BYTES / size + texts.length,
    "messages in files: all past the budget",
  );
  const back = await Promise.all(texts.map(() => small.recv()));
  assertEquals(back.map((b) => new TextDecoder().decode(b)), texts, "small messages");
  for (let i = 0; i < 300; i++) {
    const got = await chans[i % 3].recv();
    assert(samePattern(got, i, size), `message ${i} came back changed or out of order`);
  }
  const files = [...Deno.readDirSync(`${s.varDir}/spool`)].map((e) => e.name);
  assertEquals(files, [], "spool files left after every message was received");
});
