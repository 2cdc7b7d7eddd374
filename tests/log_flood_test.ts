/**
 * The server log against unauthenticated peers (issue 18, item 5): text from a hello must
 * not forge log lines or reach a terminal raw, and a flood of refused connections must
 * write a bounded number of lines, with a summary of the rest.
 */

import { Packr } from "msgpackr/pack";
import { assert, Server, waitFor } from "./_harness.ts";

const packr = new Packr({ useRecords: false, moreTypes: false });

/** One handshake frame: u32 BE length, then the body. */
function frame(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  return out;
}

/** Send one frame on a fresh connection and wait until the server closes it. */
async function sendAndWait(port: number, bytes: Uint8Array): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(bytes);
    const buf = new Uint8Array(4096);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && (await conn.read(buf)) !== null) { /* the refusal */ }
  } catch {
    /* reset */
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

function portOf(s: Server): number {
  return Number(/:(\d+)\//.exec(s.url)![1]);
}

/** A line as server/log.ts writes it: time, level, category. */
const LINE = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ [+-]\d\d:\d\d \[[A-Z]{3}\] circuit·[a-z]+: /;

Deno.test("text in a hello cannot forge a log line or reach the terminal raw", async () => {
  await using s = await Server.start();
  const port = portOf(s);
  const forged = "\n2026-01-01 00:00:00.000 +00:00 [INF] circuit·membership: member Xdeadbeef left";
  const hello = (to: Record<string, unknown>) =>
    frame(packr.pack({
      v: [2, 2],
      role: "client",
      nonce: new Uint8Array(32),
      to,
      keyed: false,
    }));
  // The URL's id and pid are echoed in the "no longer runs at this address" refusal.
  await sendAndWait(port, hello({ pid: 1, id: `0000000000000000${forged}\x1b[2J\u0000\ud800` }));
  await sendAndWait(port, hello({ pid: `1${forged}\r\u2028`, id: "0000000000000000" }));
  await waitFor(
    async () => (await Deno.readTextFile(`${s.varDir}/server.log`)).split("refusing").length > 2,
    "both refusals in server.log",
  );
  const log = await Deno.readTextFile(`${s.varDir}/server.log`);
  for (const line of log.trimEnd().split("\n")) {
    assert(LINE.test(line), `a line not written by the logger: ${JSON.stringify(line)}`);
    assert(!/^\S+ \S+ \S+ \[INF\] circuit·membership: member Xdeadbeef/.test(line), line);
  }
  // deno-lint-ignore no-control-regex
  assert(!/[\u0000-\u0008\u000b-\u001f\u007f\u2028\ud800]/u.test(log), "raw control characters");
  assert(!log.includes("\r"), "a raw CR");
});

Deno.test("a flood of refused connections writes a bounded number of lines and a summary", async () => {
  await using s = await Server.start();
  const port = portOf(s);
  const junk = frame(packr.pack({ hello: "junk" })); // a malformed hello: refused, logged
  const total = 3000;
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < total) {
      next++;
      await sendAndWait(port, junk);
    }
  }));
  const read = () => Deno.readTextFile(`${s.varDir}/server.log`);
  const refusals = (await read()).split("\n").filter((l) => l.includes("refusing connection"));
  // 10 per 10 s window; the flood may span a few windows on a slow machine.
  assert(refusals.length <= 40, `${refusals.length} refusal lines for ${total} connections`);
  const summary = await waitFor(
    async () => /… and (\d+) more refused connections in the last 10 s/.exec(await read()),
    "the summary line",
    20_000,
  );
  assert(Number(summary![1]) >= 100, `summary counts ${summary![1]}`);
  const lines = (await read()).trimEnd().split("\n").length;
  assert(lines < 60, `server.log has ${lines} lines after ${total} refused connections`);
});
