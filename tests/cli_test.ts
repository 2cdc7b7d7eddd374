/**
 * The command line against real servers: flags, environment, dial order, errors.
 */

import { COMMANDS } from "../cli/commands.ts";
import { connect } from "../mod.ts";
import {
  assert,
  assertEquals,
  assertOneLineError,
  cli,
  keyFile,
  Server,
  TempDir,
} from "./_harness.ts";

Deno.test("every subcommand of the contract has help", async () => {
  const names = [
    "start",
    "keygen",
    "ls",
    "mk@join",
    "mk@leave",
    "stk",
    "join",
    "suicide",
    "mkchan",
    "send",
    "recv",
    "close",
    "scrub",
    "peek",
    "mkdns",
    "set",
    "unset",
    "mkdkr",
    "mkproc",
    "signal",
    "wait",
    "waitall",
    "stdin",
    "stdout",
    "stderr",
    "run",
    "help",
  ];
  assertEquals(Object.keys(COMMANDS).sort(), [...names].sort());
  const list = await cli(["help"]);
  assertEquals(list.code, 0);
  for (const n of names) assert(list.stdout.includes(`  ${n} `), `help lists ${n}`);
  for (const n of ["ls", "start", "mkproc"]) {
    const r = await cli([n, "-h"]);
    assertEquals(r.code, 0, r.stderr);
    assert(r.stdout.startsWith(`usage: circuit ${n}`), r.stdout);
  }
  const start = await cli(["help", "start"]);
  for (const f of ["--addr", "--if", "--join", "--discover", "--hmac", "--docker", "--var"]) {
    assert(start.stdout.includes(f), `start help names ${f}`);
  }
});

Deno.test("keygen prints base64 of 64 random bytes, 88 characters and a newline", async () => {
  const a = await cli(["keygen"]), b = await cli(["keygen"]);
  assertEquals(a.stdout.length, 89);
  assert(/^[A-Za-z0-9+/]{86}==\n$/.test(a.stdout), a.stdout);
  assertEquals(atob(a.stdout.trim()).length, 64);
  assert(a.stdout !== b.stdout, "keys differ");
});

Deno.test("client commands dial -d, then $CIRCUIT (a URL or a file holding one)", async () => {
  await using s = await Server.start();
  using tmp = new TempDir();
  await Deno.writeTextFile(`${tmp.path}/url`, s.url + "\n");
  for (const dial of [["-d", s.url], ["-dial", s.url], ["--dial", s.url], [`--dial=${s.url}`]]) {
    assertEquals((await cli(["ls", ...dial, "/"])).stdout, `${s.path}\n`, dial.join(" "));
  }
  const viaEnv = await cli(["ls", "/"], { env: { CIRCUIT: `${tmp.path}/url` } });
  assertEquals(viaEnv.stdout, `${s.path}\n`);
  const envAndDiscover = await cli(["ls", "/"], {
    env: { CIRCUIT: `${tmp.path}/url`, CIRCUIT_DISCOVER: "228.8.8.8:7711" },
  });
  assertEquals(envAndDiscover.stdout, `${s.path}\n`, "$CIRCUIT wins over a discover default");
  const urlInEnv = await cli(["ls", "/"], { env: { CIRCUIT: s.url } });
  assertEquals(
    urlInEnv.stdout,
    `${s.path}\n`,
    `$CIRCUIT holding the URL itself: ${urlInEnv.stderr}`,
  );
  const flagsAfter = await cli(["ls", "/", "-d", s.url]);
  assertEquals(flagsAfter.stdout, `${s.path}\n`, "flags after positionals");
});

Deno.test("a client command with nowhere to dial prints the contract's error", async () => {
  assertOneLineError(
    await cli(["ls", "/"]),
    /^no dial or discovery addresses available; use -dial or -discover$/,
  );
});

Deno.test("bad input gets one line on stderr and exit 1", async () => {
  await using s = await Server.start();
  assertOneLineError(await cli(["frobnicate"]), /unknown command "frobnicate"/);
  assertOneLineError(await cli(["ls", "-bogus", "/"]), /flag provided but not defined: -bogus/);
  assertOneLineError(await cli(["ls", "-d", "http://x", "/"]), /circuit:\/\/HOST:PORT/);
  assertOneLineError(await cli(["ls", "-d", s.url]), /usage: circuit ls/);
  assertOneLineError(await cli(["ls", "-d", s.url, "/nonserver"]), /No server "nonserver"/);
  assertOneLineError(await cli(["scrub", "-d", s.url, s.path]), /use suicide/);
  assertOneLineError(await cli(["stk", "-d", s.url, "/X0000000000000001"]), /not a member/);
  assertOneLineError(await cli(["ls", "-d", s.url, "--timeout", "soon", "/"]), /--timeout/);
  assertOneLineError(await cli(["mkdns", "-d", s.url]), /usage: circuit mkdns/);
  assertOneLineError(
    await cli(["ls", "-d", "circuit://127.0.0.1:1/1/Q0000000000000001", "/"]),
    /^Dialing circuit:\/\/127\.0\.0\.1:1\/1\/Q0000000000000001 failed/,
  );
  assertOneLineError(await cli(["help", "bogus"]), /unknown command "bogus"/);
  assertOneLineError(await cli(["keygen", "extra"]), /keygen takes no arguments/);
  assertOneLineError(
    await cli(["mkchan", "-d", s.url, `${s.path}/c`, "99999999999999999999"]),
    /got "99999999999999999999"$/,
  );
  assertOneLineError(await cli(["ls", "-l=maybe", "-d", s.url, "/"]), /invalid boolean value/);
  // Errors name the operation and the path, not the wire's internal call names.
  assertOneLineError(await cli(["stk", "-d", s.url, "/"]), /^"stk" needs a server's path/);
  await cli(["mkchan", "-d", s.url, `${s.path}/quiet`, "0"]);
  const late = await cli(["recv", "-d", s.url, "--timeout", "300ms", `${s.path}/quiet`]);
  assertOneLineError(late, new RegExp(`^Recv ${s.path}/quiet timed out after 300 ms$`));
  const alive = await cli(["ls", "-d", s.url, "/"]);
  assertEquals(alive.stdout, `${s.path}\n`, "server alive after bad input");
});

Deno.test("flags take Go's FLAG=VALUE forms: -d=URL, -l=true, --long=false", async () => {
  await using s = await Server.start();
  assertEquals((await cli(["ls", `-d=${s.url}`, "/"])).stdout, `${s.path}\n`);
  const long = (await cli(["ls", "-l", "-d", s.url, "/"])).stdout;
  assert(long.startsWith("server ") && long.endsWith(` ${s.path}\n`), long);
  assertEquals((await cli(["ls", "-l=true", "-d", s.url, "/"])).stdout, long);
  assertEquals((await cli(["ls", "--long=false", "-d", s.url, "/"])).stdout, `${s.path}\n`);
});

Deno.test("scrub of an empty anchor succeeds and does nothing", async () => {
  await using s = await Server.start();
  const r = await cli(["scrub", "-d", s.url, `${s.path}/none`]);
  assertEquals([r.code, r.stdout, r.stderr], [0, "", ""]);
});

Deno.test("a dial to a server that never answers times out with a clear error", async () => {
  using l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  const t = performance.now();
  const r = await cli(["ls", "-d", `circuit://127.0.0.1:${port}/1/Q0000000000000001`, "/"]);
  assertOneLineError(r, /timed out/);
  assert(performance.now() - t < 8000, "gave up within the dial timeout");
});

Deno.test("start refuses a second server on the same --var directory", async () => {
  await using s = await Server.start();
  let err = "";
  try {
    await using second = await Server.start({ varDir: s.varDir });
    err = `second server started: ${second.url}`;
  } catch (e) {
    err = (e as Error).message;
  }
  assert(/exited 1 .*another circuit server is using it$/.test(err), err);
});

Deno.test("start with a port in use exits 1 with one line", async () => {
  using l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  using tmp = new TempDir();
  assertOneLineError(
    await cli(["start", "--var", tmp.path, "-a", `127.0.0.1:${port}`]),
    /address already in use/,
  );
  assertOneLineError(await cli(["start", "--var", tmp.path, "-a", "127.0.0.1"]), /HOST:PORT/);
  assertOneLineError(await cli(["start", "--var", tmp.path, "--if", "nosuch0"]), /nosuch0/);
});

Deno.test("start refuses a non-loopback address without a key unless --insecure", async () => {
  using tmp = new TempDir();
  assertOneLineError(
    await cli(["start", "--var", tmp.path, "-a", "0.0.0.0:0"]),
    /^Refusing to serve 0\.0\.0\.0 without a key/,
  );
});

Deno.test("start without -a advertises loopback without a key and never a wildcard", async () => {
  await using s = await Server.start();
  assert(/^circuit:\/\/127\.0\.0\.1:\d+\/\d+\/Q[0-9a-f]{16}$/.test(s.url), s.url);
  using tmp = new TempDir();
  const key = await keyFile(tmp.path);
  await using keyed = await Server.start({ args: ["--hmac", key, "-a", "0.0.0.0:0"] });
  assert(!/0\.0\.0\.0|\[::\]/.test(keyed.url), `dialable URL: ${keyed.url}`);
});

Deno.test("start with a bad duration or size flag exits 1 with one line", async () => {
  using tmp = new TempDir();
  const start = (...flags: string[]) => cli(["start", "--var", `${tmp.path}/v`, ...flags]);
  assertOneLineError(await start("--output-hold", "soon"), /^Parsing --output-hold failed/);
  assertOneLineError(await start("--scrub-grace", "soon"), /^Parsing --scrub-grace failed/);
  assertOneLineError(await start("--output-bound", "lots"), /output-bound/);
});

Deno.test("start with a bad key file exits 1 with one line", async () => {
  using tmp = new TempDir();
  await Deno.writeTextFile(`${tmp.path}/bad`, "not base64 at all!\n");
  assertOneLineError(
    await cli(["start", "--var", `${tmp.path}/v`, "--hmac", `${tmp.path}/bad`]),
    /key file .* not base64/,
  );
  assertOneLineError(
    await cli(["start", "--var", `${tmp.path}/v`, "--hmac", `${tmp.path}/missing`]),
    /Reading key file/,
  );
});

Deno.test("ls --depth prints children before parents end to end; without it, parents first", async () => {
  await using s = await Server.start();
  await using client = await connect(s.url);
  const names = ["a", "a/x", "a/x/y", "b", "b/z"];
  for (const n of names) await client.walk(`${s.path}/${n}`).makeChan(1);
  const byName = names.map((n) => `${s.path}/${n}`);
  const byDepth = ["a/x/y", "a/x", "a", "b/z", "b"].map((n) => `${s.path}/${n}`);
  const lines = (paths: string[]) => paths.map((p) => `${p}\n`).join("");
  const ls = (...args: string[]) => cli(["ls", "-d", s.url, ...args]);
  assertEquals(await ls(`${s.path}/...`), { code: 0, stdout: lines(byName), stderr: "" });
  assertEquals(await ls("--depth", `${s.path}/...`), {
    code: 0,
    stdout: lines(byDepth),
    stderr: "",
  });
  assertEquals((await ls(`${s.path}/...`, "--depth")).stdout, lines(byDepth), "flag after");
  assertEquals((await ls("--depth=false", `${s.path}/...`)).stdout, lines(byName));
  assertEquals((await ls("/...")).stdout, lines([s.path, ...byName]), "the cluster, by name");
  assertEquals((await ls("--depth", "/...")).stdout, lines([...byDepth, s.path]), "by depth");
  const long = await ls("-l", "--depth", `${s.path}/...`);
  assertEquals(long.stdout, byDepth.map((p) => `${"chan".padEnd(15)} ${p}\n`).join(""));
});

Deno.test("version, did you mean, Go durations and --json", async () => {
  const json = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  for (const word of ["version", "--version", "-version"]) {
    const r = await cli([word]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(
      r.stdout,
      `circuit ${json.version} (deno ${Deno.version.deno}, ${Deno.build.os}/${Deno.build.arch})\n`,
    );
  }
  assertOneLineError(await cli(["wiat"]), /^unknown command "wiat"; did you mean "wait"\?/);
  assertOneLineError(
    await cli(["ls", "-hmca", "k", "/"]),
    /^flag provided but not defined: -hmca \(did you mean --hmac\?\)$/,
  );
  await using s = await Server.start();
  const ls = await cli(["ls", "-d", s.url, "--timeout", "1m30s", "--json", "/"]);
  assertEquals(ls.code, 0, ls.stderr);
  assertEquals(ls.stdout, JSON.stringify({ path: s.path, kind: "server" }) + "\n");
  const mk = await cli(["mkproc", "-d", s.url, `${s.path}/p`], {
    stdin: JSON.stringify({ Path: "/bin/sh", Args: ["-c", "exit 3"] }),
  });
  assertEquals(mk.code, 0, mk.stderr);
  const wait = await cli([
    "wait",
    "-x",
    "-d",
    s.url,
    "--timeout",
    "1h2m3.5s",
    "--json",
    `${s.path}/p`,
  ]);
  assertEquals(wait.code, 3, wait.stderr);
  assertEquals(wait.stdout.trimEnd().split("\n").length, 1, wait.stdout);
  assertEquals(JSON.parse(wait.stdout).Exit, { Body: "exit status 3" });
  const peek = await cli(["peek", "-d", s.url, "--json", `${s.path}/p`]);
  assertEquals(peek.stdout, JSON.stringify(JSON.parse(peek.stdout)) + "\n");
  const stk = await cli(["stk", "-d", s.url, "--timeout", "250ms", "--json", s.path]);
  assertEquals(stk.code, 0, stk.stderr);
  assertEquals(stk.stdout.trimEnd().split("\n").length, 1);
  assertOneLineError(await cli(["ls", "-d", s.url, "--timeout", "1m30", "/"]), /1m30s/);
  await using go = await Server.start({
    args: ["--scrub-grace", "1.5s", "--output-hold", "0s"],
  });
  assertEquals((await cli(["ls", "-d", go.url, "/"])).stdout, go.path + "\n");
});
