/**
 * Direct routes: a library client reaches an anchor on another server over its own
 * connection to that server once it has one, keeps call order across the switch, and
 * keeps forwarding through the dialed server when the other server cannot be reached.
 */

import { connect } from "../mod.ts";
import { Routes } from "../client/routes.ts";
import { dial } from "../net/conn.ts";
import { parseUrl } from "../net/url.ts";
import {
  assert,
  assertEquals,
  Cluster,
  keyFile,
  missingTool,
  Server,
  skipTest,
  TempDir,
  waitFor,
} from "./_harness.ts";
import { Lan, netnsUnavailable } from "./_netns.ts";

const ROOT = new URL("..", import.meta.url).pathname;

Deno.test("routes: calls on another server's anchors move to a direct connection", async () => {
  await using cluster = await (await new Cluster().chain(2)).listed();
  const [a, b] = cluster.servers;
  {
    await using client = await connect(a.url);
    const chan = await client.walk(`${b.path}/c`).makeChan(0);
    assertEquals(client.directServers, [], "nothing is dialed before the first call elsewhere");
    await waitFor(() => client.directServers.length === 1, "a direct connection to b", 5000);
    assertEquals(client.directServers, [b.path]);
    // Calls work over it, blocking ones included.
    const got = chan.recv();
    await chan.send(new TextEncoder().encode("hi"));
    assertEquals(new TextDecoder().decode(await got), "hi");
    const proc = await client.walk(`${b.path}/p`).makeProc({
      Path: "/bin/echo",
      Args: ["direct"],
    });
    assertEquals(await new Response(proc.stdout).text(), "direct\n");
    await proc.scrub();
    // The dialed server's own anchors never need another connection.
    await client.walk(a.path).peek();
    assertEquals(client.directServers, [b.path]);
  }
  {
    await using client = await connect(a.url, { direct: false });
    await client.walk(b.path).peek();
    await new Promise((r) => setTimeout(r, 300));
    assertEquals(client.directServers, [], "direct: false dials nothing");
  }
});

Deno.test("routes: sends made in order arrive in order while the direct connection comes up", async () => {
  await using cluster = await (await new Cluster().chain(2)).listed();
  const [a, b] = cluster.servers;
  await using client = await connect(a.url);
  const n = 4000;
  const chan = await client.walk(`${b.path}/order`).makeChan(n);
  // Sends are always in flight, through the dialed server, while the direct connection
  // is made: none may go direct and overtake the forwarded ones still on their way.
  const window: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    window.push(chan.send(new TextEncoder().encode(String(i))));
    if (window.length >= 200) await window.shift();
  }
  await Promise.all(window);
  await chan.close();
  let next = 0;
  for await (const m of chan) {
    assertEquals(Number(new TextDecoder().decode(m)), next, "order");
    next++;
  }
  assertEquals(next, n);
});

Deno.test("routes: a server's calls move to the direct connection only once its forwarded ones have their replies", async () => {
  await using cluster = await (await new Cluster().chain(2)).listed();
  const [a, b] = cluster.servers;
  const dialed = await dial(parseUrl(a.url), { role: "client" });
  const routes = new Routes(dialed, a.path.slice(1), { direct: true });
  try {
    const server = b.path.slice(1);
    const first = routes.route(server);
    assert(first.mux === dialed.mux && first.settled, "the first call is forwarded");
    await waitFor(() => routes.direct.length === 1, "the direct connection", 5000);
    const second = routes.route(server);
    assert(second.mux === dialed.mux, "forwarded while the first call has no reply");
    first.settled!();
    const third = routes.route(server);
    assert(third.mux === dialed.mux, "forwarded while the second call has no reply");
    second.settled!();
    third.settled!();
    const fourth = routes.route(server);
    assert(fourth.mux !== dialed.mux && !fourth.settled, "direct once every reply is in");
    assert(routes.route(undefined).mux === dialed.mux, "the root goes to the dialed server");
    assert(routes.route(a.path.slice(1)).mux === dialed.mux, "so does the dialed server");
    const bad = routes.route("not-a-server");
    assert(bad.mux === dialed.mux && !bad.settled, "a bad name is the dialed server's to refuse");
    assertEquals(routes.direct, [b.path], "and is never dialed");
    // A direct connection that has closed is not used again, even before its closed
    // promise settles: the next call is forwarded, and no dial follows at once.
    fourth.mux.close();
    const fifth = routes.route(server);
    assert(fifth.mux === dialed.mux && fifth.settled, "forwarded once the direct one closed");
    fifth.settled!();
    assertEquals(routes.direct, []);
  } finally {
    routes.close();
    await routes.settled();
    dialed.close();
    await dialed.closed;
  }
  // Closing while a direct dial is under way: the dial gives up and nothing stays open
  // (the test's resource sanitizer checks that), and later calls use the dialed server.
  const again = await dial(parseUrl(a.url), { role: "client" });
  const early = new Routes(again, a.path.slice(1), { direct: true });
  try {
    early.route(b.path.slice(1)).settled!();
    early.close();
    await early.settled();
    assertEquals(early.direct, []);
    const after = early.route(b.path.slice(1));
    assert(after.mux === again.mux && !after.settled, "closed routes go to the dialed server");
  } finally {
    again.close();
    await again.closed;
  }
});

const why = await netnsUnavailable() ?? await missingTool(["nft"]);
const UNREACHABLE =
  "routes: a server the client cannot reach is still reached through the dialed one";
if (why) skipTest(UNREACHABLE, why);
else Deno.test(UNREACHABLE, unreachable);

async function unreachable(): Promise<void> {
  using tmp = new TempDir();
  const key = await keyFile(tmp.path);
  await using lan = await Lan.create(3);
  const [h1, h2, h3] = lan.hosts;
  // h2 drops every packet from h3: the client on h3 reaches the server on h1 only.
  await run(
    [...h2.prefix, "nft", "-f", "-"],
    `table inet t {
    chain in { type filter hook input priority 0; ip saddr ${h3.addr} drop; }
  }`,
  );
  await using s1 = await Server.start({
    prefix: h1.prefix,
    args: ["-a", `${h1.addr}:7711`, "--hmac", key],
  });
  await using s2 = await Server.start({
    prefix: h2.prefix,
    args: ["-a", `${h2.addr}:7711`, "--hmac", key, "-j", s1.url],
  });
  const script = `${tmp.path}/client.ts`;
  await Deno.writeTextFile(
    script,
    `import { connect } from ${JSON.stringify(`${ROOT}mod.ts`)};
const [url, path, keyFile] = Deno.args;
await using c = await connect(url, { key: await Deno.readTextFile(keyFile), dialTimeoutMs: 500 });
for (let i = 0; i < 100 && (await c.walk("/").ls()).length < 2; i++) await new Promise((r) => setTimeout(r, 50));
const t = performance.now();
const first = await c.walk(path).peek();
const firstMs = performance.now() - t;
await new Promise((r) => setTimeout(r, 1500)); // the direct dial times out meanwhile
const second = await c.walk(path).peek();
console.log(JSON.stringify({ first, second, firstMs, direct: c.directServers }));
`,
  );
  const out = await run([
    ...h3.prefix,
    Deno.execPath(),
    "run",
    "-A",
    "--config",
    `${ROOT}deno.json`,
    script,
    s1.url,
    s2.path,
    key,
  ]);
  const r = JSON.parse(out) as {
    first: { Addr: string };
    second: { Addr: string };
    firstMs: number;
    direct: string[];
  };
  assertEquals(r.first.Addr, s2.url);
  assertEquals(r.second.Addr, s2.url);
  assertEquals(r.direct, [], "no direct connection to the unreachable server");
  assert(r.firstMs < 400, `the first call waited for the dial: ${r.firstMs} ms`);
}

async function run(argv: string[], stdin?: string): Promise<string> {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(`${argv.join(" ")} failed: ${dec.decode(out.stderr).trim()}`);
  }
  return dec.decode(out.stdout);
}
