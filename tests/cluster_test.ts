/**
 * Real servers on loopback: joining, merging, listing, peeking, leaving, failing.
 */

import { CircuitError, connect } from "../mod.ts";
import { assert, assertEquals, cli, Cluster, listEachOther, Server, waitFor } from "./_harness.ts";

async function lsRoot(dial: string): Promise<string[]> {
  const r = await cli(["ls", "-d", dial, "/"]);
  assert(r.code === 0, `ls failed: ${r.stderr}`);
  return r.stdout.split("\n").filter(Boolean);
}

function sortedPaths(c: Cluster): string[] {
  return c.servers.map((s) => s.path).sort();
}

Deno.test("servers joined in a -j chain list the same members everywhere within 2 s", async () => {
  await using c = await new Cluster().chain(4);
  const want = sortedPaths(c);
  await waitFor(() => listEachOther(c.servers), "4 servers to list each other", 2000);
  for (const s of c.servers) assertEquals(await lsRoot(s.url), want, `ls / via ${s.path}`);
});

Deno.test("circuit join merges two clusters into one", async () => {
  await using a = await new Cluster().chain(2);
  await using b = await new Cluster().chain(2);
  await waitFor(() => listEachOther(a.servers), "first cluster");
  await waitFor(() => listEachOther(b.servers), "second cluster");
  const r = await cli(["join", "-d", a.servers[0].url, a.servers[0].path, b.servers[1].url]);
  assertEquals([r.code, r.stderr], [0, ""]);
  const both = [...a.servers, ...b.servers];
  await waitFor(() => listEachOther(both), "merged cluster everywhere", 2000);
});

Deno.test("ls -l /... prints kind and absolute path in the contract's format", async () => {
  await using c = await new Cluster().chain(2);
  const want = sortedPaths(c);
  await waitFor(() => listEachOther(c.servers), "2 servers");
  const r = await cli(["ls", "-l", "-d", c.servers[1].url, "/..."]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stdout, want.map((p) => `server          ${p}\n`).join(""));
  const depth = await cli(["ls", "--depth", "-d", c.servers[0].url, "/..."]);
  assertEquals(depth.stdout, want.map((p) => `${p}\n`).join(""));
  const one = await cli(["ls", "-d", c.servers[0].url, c.servers[1].path]);
  assertEquals([one.code, one.stdout], [0, ""], "a server without anchors lists nothing");
});

Deno.test("peek of a server prints tab-indented Addr and Joined", async () => {
  await using c = await new Cluster().chain(2);
  const [a, b] = c.servers;
  await waitFor(() => listEachOther(c.servers), "2 servers");
  const r = await cli(["peek", "-d", a.url, b.path]);
  assertEquals(r.code, 0, r.stderr);
  const v = JSON.parse(r.stdout);
  assertEquals(Object.keys(v), ["Addr", "Joined"]);
  assertEquals(v.Addr, b.url);
  assert(!Number.isNaN(Date.parse(v.Joined)), `Joined is not RFC 3339: ${v.Joined}`);
  assertEquals(r.stdout, JSON.stringify(v, null, "\t") + "\n", "tab-indented, newline");
  const empty = await cli(["peek", "-d", a.url, `${b.path}/nothing/here`]);
  assertEquals([empty.code, empty.stdout], [0, "null\n"]);
});

Deno.test("stk prints memory, connections, members and in-flight operations", async () => {
  await using c = await new Cluster().chain(2);
  await waitFor(() => listEachOther(c.servers), "2 servers");
  const r = await cli(["stk", "-d", c.servers[0].url, c.servers[1].path]);
  assertEquals(r.code, 0, r.stderr);
  const v = JSON.parse(r.stdout);
  for (const k of ["Memory", "Connections", "Members", "Elements", "InFlight", "Peers"]) {
    assert(k in v, `stk lacks ${k}: ${r.stdout}`);
  }
  assertEquals(v.Members, sortedPaths(c).map((p) => p.slice(1)));
  assert(v.Memory.rss > 0, "rss reported");
  assert(v.InFlight.some((f: { Op: string }) => f.Op === "element"), "the stk call is in flight");
});

Deno.test("suicide stops a server and the others drop it within 2 s", async () => {
  await using c = await new Cluster().chain(3);
  await waitFor(() => listEachOther(c.servers), "3 servers");
  const victim = c.servers[2];
  const r = await cli(["suicide", "-d", c.servers[0].url, victim.path]);
  assertEquals([r.code, r.stderr], [0, ""]);
  assertEquals((await victim.status).code, 0, "the server exits 0");
  const rest = c.servers.slice(0, 2);
  await waitFor(
    () => listEachOther(rest),
    "others to drop the server",
    2000,
  );
});

Deno.test("SIGTERM stops a server cleanly and others see it leave", async () => {
  await using c = await new Cluster().chain(2);
  await waitFor(() => listEachOther(c.servers), "2 servers");
  c.servers[1].kill("SIGTERM");
  assertEquals((await c.servers[1].status).code, 0);
  await waitFor(() => listEachOther([c.servers[0]]), "leave", 2000);
});

Deno.test("kill -9 of a member is noticed by the others within 2 s", async () => {
  await using c = await new Cluster().chain(3);
  await waitFor(() => listEachOther(c.servers), "3 servers");
  c.servers[1].kill("SIGKILL");
  await c.servers[1].status;
  const rest = [c.servers[0], c.servers[2]];
  await waitFor(
    () => listEachOther(rest),
    "others to notice the kill",
    2000,
  );
});

Deno.test("a restarted server has a new URL and the old URL is refused", async () => {
  await using first = await Server.start();
  const varDir = first.varDir;
  const oldUrl = first.url;
  first.kill("SIGTERM");
  await first.status;
  const port = oldUrl.match(/:(\d+)\//)![1];
  await using second = await Server.start({ varDir, args: ["-a", `127.0.0.1:${port}`] });
  assert(second.url !== oldUrl, "new URL");
  assertEquals(second.url.match(/:(\d+)\//)![1], port, "same port");
  const r = await cli(["ls", "-d", oldUrl, "/"]);
  assertEquals(r.code, 1);
  assert(/no longer runs/.test(r.stderr), r.stderr);
  assertEquals((await cli(["ls", "-d", second.url, "/"])).stdout, `${second.path}\n`);
});

Deno.test("the operation log lists state-changing operations in order", async () => {
  await using c = await new Cluster().chain(1);
  await using lone = await Server.start();
  const s = c.servers[0];
  {
    await using client = await connect(s.url);
    await client.walk(s.path).join(lone.url);
    await client.walk(`${s.path}/x`).make("no-such-kind", {}).catch(() => {});
    await client.walk(`${s.path}/x`).scrub();
    await client.walk(s.path).stk();
  }
  const lines = (await Deno.readTextFile(`${s.varDir}/ops.log`)).trim().split("\n");
  const recs = lines.map((l) => JSON.parse(l));
  assertEquals(recs.map((r) => [r.op, r.path]), [
    ["join", s.path],
    ["make no-such-kind", `${s.path}/x`],
  ]);
  assertEquals(recs[0].outcome, "ok");
  assert(recs[1].outcome.startsWith("error: "), recs[1].outcome);
  for (const r of recs) {
    assertEquals(Object.keys(r), ["time", "caller", "op", "path", "outcome"]);
    assert(/^client 127\.0\.0\.1:\d+$/.test(r.caller), r.caller);
  }
});

Deno.test("a frozen member (SIGSTOP) is dropped within 5 s", async () => {
  await using c = await new Cluster().chain(2);
  await waitFor(() => listEachOther(c.servers), "2 servers");
  const frozen = c.servers[1];
  frozen.kill("SIGSTOP");
  try {
    await waitFor(
      () => listEachOther([c.servers[0]]),
      "the frozen member to be dropped",
      5000,
    );
  } finally {
    frozen.kill("SIGCONT");
  }
});

Deno.test("ls /... names a server that does not answer instead of dropping it", async () => {
  await using c = await new Cluster().chain(2);
  await waitFor(() => listEachOther(c.servers), "2 servers");
  const [a, b] = c.servers;
  b.kill("SIGSTOP");
  try {
    const r = await cli(["ls", "-d", a.url, "/..."]);
    assertEquals(r.code, 1, r.stderr);
    assert(r.stderr.includes(`Listing failed for ${b.path}`), r.stderr);
    assert(r.stdout.includes(`${a.path}\n`) && r.stdout.includes(`${b.path}\n`), r.stdout);
  } finally {
    b.kill("SIGCONT");
  }
});

Deno.test("suicide of the dialed server itself exits 0 and the server stops", async () => {
  await using s = await Server.start();
  const r = await cli(["suicide", "-d", s.url, s.path]);
  assertEquals([r.code, r.stderr], [0, ""]);
  assertEquals((await s.status).code, 0);
});

Deno.test("library: bad arguments are typed bad request errors, before anything is sent", async () => {
  await using s = await Server.start();
  const code = async (p: () => Promise<unknown>) => {
    const e = await p().then(() => null, (e) => e);
    assert(e instanceof CircuitError, `expected a CircuitError, got ${e}`);
    return e.code;
  };
  assertEquals(await code(() => connect(undefined as unknown as string)), "bad request");
  assertEquals(await code(() => connect(s.url, { key: new Uint8Array(3) })), "bad request");
  assertEquals(await code(() => connect(s.url, { key: 42 as unknown as string })), "bad request");
  assertEquals(await code(() => connect(s.url, { timeoutMs: -5 })), "bad request");
  await using client = await connect(s.url);
  assertEquals(await code(() => client.walk(s.path).peek({ timeoutMs: NaN })), "bad request");
  // A timer cannot hold more than 2^31-1 ms: a larger limit would fire at once.
  assertEquals(
    await code(() => client.walk(s.path).peek({ timeoutMs: Infinity })),
    "bad request",
  );
  const ch = await client.walk(`${s.path}/c`).makeChan(1);
  assertEquals(await code(() => ch.recv({ timeoutMs: -5 })), "bad request");
  assertEquals((await ch.peek()).NumRecv, 0, "and the channel saw nothing");
});
