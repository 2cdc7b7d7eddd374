/**
 * `start --metrics` on a real `circuit start` subprocess: `/metrics` passes `promtool
 * check metrics` (Debian `prometheus`; SKIPPED without it, a failure under CI=true) and
 * counts what runs; `/health` is 200 while serving and 503 once the server stops (seen
 * while it waits out a process that ignores TERM); a non-loopback address needs a key.
 *
 * @module
 */

import { connect } from "../mod.ts";
import {
  assert,
  assertEquals,
  assertOneLineError,
  cli,
  missingTool,
  Server,
  skipTest,
  TempDir,
  waitFor,
} from "./_harness.ts";

/** The metrics address a server logged (`metrics on http://HOST:PORT/metrics`). */
async function metricsAddr(s: Server): Promise<string> {
  return (await waitFor(async () => {
    const text = await Deno.readTextFile(`${s.varDir}/server.log`);
    return /metrics on http:\/\/(\S+)\/metrics/.exec(text)?.[1];
  }, "the metrics line"))!;
}

async function get(addr: string, path: string): Promise<{ status: number; text: string }> {
  const r = await fetch(`http://${addr}${path}`);
  return { status: r.status, text: await r.text() };
}

/** `NAME{LABELS} VALUE` lines of an exposition, by series. */
function samples(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

Deno.test("/metrics counts members, elements and running processes; /health is 200", async () => {
  await using s = await Server.start({ args: ["--metrics", "127.0.0.1:0"] });
  const addr = await metricsAddr(s);
  await using client = await connect(s.url);
  await client.walk(`${s.path}/c`).makeChan(3);
  await client.walk(`${s.path}/p`).makeProc({ Path: "/bin/sleep", Args: ["30"] });
  const r = await fetch(`http://${addr}/metrics`);
  assertEquals(r.status, 200);
  assert(r.headers.get("content-type")!.startsWith("text/plain; version=0.0.4"));
  const m = samples(await r.text());
  assertEquals(m.get('circuit_members{state="alive"}'), 1);
  assertEquals(m.get('circuit_elements{kind="chan"}'), 1);
  assertEquals(m.get('circuit_elements{kind="proc"}'), 1);
  assertEquals(m.get("circuit_processes_running"), 1);
  assertEquals(m.get('circuit_connections{role="client"}'), 1);
  assertEquals(m.get("circuit_up"), 1);
  assertEquals(await get(addr, "/health"), { status: 200, text: "ok\n" });
  assertEquals((await get(addr, "/nothing")).status, 404);
});

const noPromtool = await missingTool(["promtool"]);
if (noPromtool) {
  skipTest("/metrics passes promtool check metrics", noPromtool);
} else {
  Deno.test("/metrics passes promtool check metrics", async () => {
    await using s = await Server.start({ args: ["--metrics", "127.0.0.1:0"] });
    const addr = await metricsAddr(s);
    await using client = await connect(s.url);
    await client.walk(`${s.path}/c`).makeChan(1);
    const { text } = await get(addr, "/metrics");
    const child = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(text));
    await w.close();
    const out = await child.output();
    const dec = new TextDecoder();
    const said = dec.decode(out.stdout) + dec.decode(out.stderr);
    assertEquals([out.code, said], [0, ""], "promtool is silent: no errors, no lint");
  });
}

Deno.test("/health turns 503 as the server stops, before its listener closes", async () => {
  await using s = await Server.start({
    args: ["--metrics", "127.0.0.1:0", "--scrub-grace", "3s"],
  });
  const addr = await metricsAddr(s);
  {
    await using client = await connect(s.url);
    // Ignores TERM: the stop waits out the grace, with /health still answering.
    const p = await client.walk(`${s.path}/stubborn`).makeProc({
      Path: "/bin/sh",
      Args: ["-c", "trap '' TERM; echo ready; sleep 30 & wait; sleep 30"],
    });
    // Stop only once the trap is set: a TERM that came first would end it at once, and
    // the listener would close before /metrics could be read.
    const reader = p.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("ready")) {
      const r = await reader.read();
      if (r.done) break;
      out += r.value;
    }
    await reader.cancel();
    assertEquals(out.trim(), "ready", "the stubborn process set its trap");
  }
  assertEquals((await get(addr, "/health")).status, 200);
  s.kill("SIGTERM");
  const seen = await waitFor(async () => {
    const r = await get(addr, "/health").catch(() => null);
    return r?.status === 503 ? r : undefined;
  }, "/health 503");
  assertEquals(seen!.text, "unavailable\n");
  const m = samples((await get(addr, "/metrics")).text);
  assertEquals(m.get("circuit_up"), 0);
  await s.status;
});

Deno.test("--metrics on a non-loopback address without a key is refused", async () => {
  using tmp = new TempDir();
  assertOneLineError(
    await cli(["start", "--var", tmp.path, "--metrics", "0.0.0.0:0"]),
    /Refusing to serve metrics on 0\.0\.0\.0 without a key/,
  );
  assertOneLineError(
    await cli(["start", "--var", tmp.path, "--metrics", "nonsense"]),
    /expected HOST:PORT/,
  );
});
