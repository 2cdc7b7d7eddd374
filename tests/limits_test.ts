/**
 * Limits for key holders on the namespace, against real servers: path depth, name
 * length and characters, anchors per server, and listings larger than one frame.
 * Requests that must be refused are sent raw (no client-side check), as a hostile key
 * holder would send them.
 */

import { type Anchor, CircuitError, comparePaths, connect } from "../mod.ts";
import { Op } from "../net/wire/mod.ts";
import { MAX_NAME_BYTES, MAX_PATH_BYTES, MAX_PATH_DEPTH } from "../net/names.ts";
import { MAX_ANCHORS, STK_MAX_ELEMENTS } from "../server/config.ts";
import { assert, assertEquals, assertOneLineError, cli, Cluster, Server } from "./_harness.ts";

/** A `make chan` sent as it is, past the client library's own checks. */
async function rawMake(a: Anchor, path: string[]): Promise<unknown> {
  return await a.request(Op.MAKE, { path, kind: "chan", spec: { cap: 0 } }, {
    timeoutMs: 30_000,
  });
}

/** The error a promise rejects with (fails when it resolves). */
async function refusal(p: Promise<unknown>, what: string): Promise<CircuitError> {
  try {
    await p;
  } catch (err) {
    assert(err instanceof CircuitError, `${what}: not a CircuitError: ${err}`);
    return err;
  }
  throw new Error(`${what}: was accepted`);
}

/** Whether a text has no C0, DEL or C1 control character. */
function printableOnly(s: string): boolean {
  return [...s].every((c) => c.charCodeAt(0) >= 0x20 && !(c >= "\x7f" && c <= "\x9f"));
}

/** Wait for the server to exit, at most `ms`. */
async function exitWithin(s: Server, ms: number): Promise<Deno.CommandStatus | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((r) => timer = setTimeout(() => r(null), ms));
  try {
    return await Promise.race([s.status, late]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("a path deeper than the limit is refused, and SIGTERM still stops the server", async () => {
  await using srv = await Server.start();
  const id = srv.path.slice(1);
  {
    await using client = await connect(srv.url);
    const root = client.walk("/");
    for (const depth of [MAX_PATH_DEPTH + 1, 10_000, 100_000]) {
      const err = await refusal(
        rawMake(root, [id, ...Array(depth).fill("d")]),
        `a make ${depth} names deep`,
      );
      assertEquals(err.code, "bad request", err.message);
      assert(err.message.includes(`at most ${MAX_PATH_DEPTH} names`), err.message);
      assert(err.message.length < 400, `the message quotes the path cut short: ${err.message}`);
    }
    // The limit itself is allowed, and lists, peeks and dumps as usual.
    const deepest = [id, ...Array(MAX_PATH_DEPTH).fill("d")];
    await rawMake(root, deepest);
    const all = await client.walk(srv.path).ls({ recursive: true });
    assertEquals(all.length, MAX_PATH_DEPTH);
    assertEquals(all.at(-1)!.path, "/" + deepest.join("/"));
    await client.walk(srv.path).stk();
  }
  const r = await cli([
    "mkchan",
    "-d",
    srv.url,
    `${srv.path}${"/d".repeat(MAX_PATH_DEPTH + 1)}`,
    "0",
  ]);
  assertOneLineError(r, new RegExp(`at most ${MAX_PATH_DEPTH} names below the server`));
  srv.kill("SIGTERM");
  const status = await exitWithin(srv, 20_000);
  assert(status, "the server did not stop within 20 s of SIGTERM");
  assertEquals(status.code, 0, `exit status; stderr: ${(await srv.stderr()).slice(-2000)}`);
});

Deno.test("names with control characters, over-long names and paths are refused", async () => {
  await using srv = await Server.start();
  const id = srv.path.slice(1);
  await using client = await connect(srv.url);
  const root = client.walk("/");
  const bad: Array<[string, string[], RegExp]> = [
    ["ESC", ["a\x1b[2Jb"], /control characters \(found U\+001B\)/],
    ["NUL", ["a\x00b"], /control characters \(found U\+0000\)/],
    ["newline", ["a\nb"], /control characters \(found U\+000A\)/],
    ["DEL", ["a\x7f"], /control characters \(found U\+007F\)/],
    ["C1 CSI", ["a\x9b2J"], /control characters \(found U\+009B\)/],
    ["...", ["a", "..."], /may not be "\.\.\."/],
    ["a long name", ["n".repeat(MAX_NAME_BYTES + 1)], /at most 255 bytes long, not 256/],
    ["a long UTF-8 name", ["é".repeat(128)], /at most 255 bytes long, not 256/],
    ["a long path", Array(20).fill("p".repeat(250)), /at most 4096 bytes long/],
  ];
  for (const [what, rel, re] of bad) {
    const err = await refusal(rawMake(root, [id, ...rel]), what);
    assertEquals(err.code, "bad request", `${what}: ${err.message}`);
    assert(re.test(err.message), `${what}: ${JSON.stringify(err.message)} does not match ${re}`);
    assert(printableOnly(err.message), `${what}: the message is escaped`);
  }
  // Lone surrogates do not survive msgpack (they arrive as U+FFFD); the library refuses them.
  const lone = await refusal(client.walk(`${srv.path}/a\ud800b`).makeChan(0), "a lone surrogate");
  assertEquals(lone.code, "bad request");
  assert(/lone surrogate \(found U\+D800\)/.test(lone.message), lone.message);
  // Nothing was made.
  assertEquals(await client.walk(srv.path).ls({ recursive: true }), []);
  // What the contract allows still works: spaces, dots, non-ASCII, the longest name.
  const good = ["é c", "a.b", "-x", "😀", "n".repeat(MAX_NAME_BYTES), "ok"];
  for (const name of good) await rawMake(root, [id, name]);
  await rawMake(root, [id, ...Array(16).fill("q".repeat(MAX_PATH_BYTES / 16 - 1))]);
  assertEquals((await client.walk(srv.path).ls()).length, good.length + 1);
  // The CLI says why in one line.
  const r = await cli(["mkchan", "-d", srv.url, `${srv.path}/e\x1bx`, "0"]);
  assertOneLineError(r, /e\\u001Bx" failed: a name may not contain control characters/);
});

Deno.test("a server holds at most MAX_ANCHORS anchors, and lists them all", async (t) => {
  await using cluster = new Cluster();
  const [a, b] = (await cluster.chain(2)).servers;
  await cluster.listed(15_000);
  const id = a.path.slice(1);
  await using client = await connect(a.url, { timeoutMs: 60_000 });
  const root = client.walk("/");
  // Chains of MAX_PATH_DEPTH anchors: /X…/cN/a/a/…/a, so few makes fill the server.
  const chains = Math.floor(MAX_ANCHORS / MAX_PATH_DEPTH);
  const chain = (i: number, depth = MAX_PATH_DEPTH) => [
    id,
    `c${String(i).padStart(5, "0")}`,
    ...Array(depth - 1).fill("a"),
  ];
  await t.step("fill the server to the limit", async () => {
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < chains) await rawMake(root, chain(next++));
    }));
    const rest = MAX_ANCHORS - chains * MAX_PATH_DEPTH;
    if (rest > 0) await rawMake(root, chain(chains, rest));
  });
  await t.step("stk lists the first STK_MAX_ELEMENTS elements and counts them all", async () => {
    const r = await cli(["stk", "-d", a.url, a.path]);
    assertEquals(r.code, 0, r.stderr);
    const stk = JSON.parse(r.stdout);
    assertEquals(stk.ElementCount, chains + 1, "ElementCount");
    assertEquals(stk.Elements.length, STK_MAX_ELEMENTS, "Elements listed");
  });
  await t.step("ls /... lists every anchor, through either server", async () => {
    for (const via of [a, b]) {
      const r = await cli(["ls", "-d", via.url, "--timeout", "120s", "/..."]);
      assertEquals(r.code, 0, r.stderr);
      const lines = r.stdout.split("\n").slice(0, -1);
      assertEquals(lines.length, MAX_ANCHORS + 2, `lines listed through ${via.path}`);
      const at = lines.indexOf(a.path);
      assertEquals(lines.slice(at, at + 3), [a.path, `${a.path}/c00000`, `${a.path}/c00000/a`]);
      assert(lines.includes(b.path), "the other server is listed");
      const sorted = [...lines].sort(comparePaths);
      assert(lines.every((l, i) => l === sorted[i]), "sorted, parents first");
      assertEquals(new Set(lines).size, lines.length, "no line twice");
    }
    const entries = await client.walk(a.path).ls({ recursive: true });
    assertEquals(entries.length, MAX_ANCHORS);
    // A caller that opens no download (a client from before streamed listings) gets one
    // reply while it fits, and a clear refusal when it does not.
    const small = await root.request(Op.LS, { path: [id, "c00001", "a"], recursive: false });
    assertEquals(small, [{ path: `${a.path}/c00001/a/a`, kind: "·" }]);
    for (const path of [[id], []]) {
      const err = await refusal(
        root.request(Op.LS, { path, recursive: true }),
        `a whole-reply listing of /${path.join("/")}...`,
      );
      assertEquals(err.code, "bad request", err.message);
      assert(/too large for one reply/.test(err.message), err.message);
    }
  });
  await t.step("a make past the limit is refused with bad request", async () => {
    const err = await refusal(rawMake(root, [id, "one-more"]), "one anchor past the limit");
    assertEquals(err.code, "bad request", err.message);
    assert(err.message.includes(`allows at most ${MAX_ANCHORS}`), err.message);
    const r = await cli(["mkchan", "-d", a.url, `${a.path}/one-more`, "0"]);
    assertOneLineError(r, /holds 100000 anchors and allows at most 100000; scrub some first/);
  });
  await t.step("scrubbing frees anchors", async () => {
    await client.walk("/" + chain(0).join("/")).scrub();
    assertEquals(await client.walk(`${a.path}/c00000`).ls(), []);
    await rawMake(root, chain(0));
    const err = await refusal(rawMake(root, [id, "one-more"]), "past the limit again");
    assertEquals(err.code, "bad request", err.message);
  });
});
