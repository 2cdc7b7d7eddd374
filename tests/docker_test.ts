/**
 * Docker elements against a real engine (see `_docker.ts`). Without root or Docker the
 * tests say SKIPPED with the reason; under CI=true that is a failure.
 */

import { CircuitError, connect } from "../mod.ts";
import {
  assert,
  assertEquals,
  assertOneLineError,
  cli,
  Server,
  skipTest,
  waitFor,
} from "./_harness.ts";
import { testEngine } from "./_docker.ts";

const engine = await testEngine();

function docker(args: string[], host: string): Promise<string> {
  return new Deno.Command("docker", { args, env: { DOCKER_HOST: host }, stderr: "null" })
    .output().then((o) => new TextDecoder().decode(o.stdout).trim());
}

if ("skip" in engine) {
  skipTest("docker elements", engine.skip);
} else {
  const host = engine.host;
  const dockerServer = (args: string[] = []) =>
    Server.start({
      args: ["--docker", "--scrub-grace", "1s", ...args],
      env: { DOCKER_HOST: host },
    });
  const containers = async () => (await docker(["ps", "-aq"], host)).split("\n").filter(Boolean);
  const mkdkr = (s: Server, name: string, run: unknown, flags: string[] = []) =>
    cli(["mkdkr", "-d", s.url, ...flags, `${s.path}/${name}`], { stdin: JSON.stringify(run) });

  Deno.test("mkdkr runs /bin/echo in a container and stdout reads its output", async () => {
    await using s = await dockerServer();
    const r = await mkdkr(s, "echo", {
      Image: "busybox",
      Path: "/bin/echo",
      Args: ["hi", "there"],
    });
    assertEquals([r.code, r.stderr], [0, ""]);
    const w = await cli(["wait", "-d", s.url, `${s.path}/echo`]);
    assertEquals(JSON.parse(w.stdout).State.ExitCode, 0);
    assertEquals((await cli(["stdout", "-d", s.url, `${s.path}/echo`])).stdout, "hi there\n");
    const ls = await cli(["ls", "-l", "-d", s.url, `${s.path}/...`]);
    assertEquals(ls.stdout, `docker          ${s.path}/echo\n`);
  });

  Deno.test("stdin reaches the container: cat echoes it", async () => {
    await using s = await dockerServer();
    assertEquals((await mkdkr(s, "cat", { Image: "busybox", Path: "/bin/cat" })).code, 0);
    const w = await cli(["stdin", "-d", s.url, `${s.path}/cat`], { stdin: "through the pipe\n" });
    assertEquals(w.code, 0, w.stderr);
    assertEquals(
      (await cli(["stdout", "-d", s.url, `${s.path}/cat`])).stdout,
      "through the pipe\n",
    );
  });

  Deno.test("wait reports exit code 3 and signal TERM ends a sleep", async () => {
    await using s = await dockerServer();
    await mkdkr(s, "e3", { Image: "busybox", Path: "/bin/sh", Args: ["-c", "exit 3"] });
    const w = JSON.parse((await cli(["wait", "-d", s.url, `${s.path}/e3`])).stdout);
    assertEquals([w.State.Status, w.State.ExitCode], ["exited", 3]);
    await mkdkr(s, "sl", { Image: "busybox", Path: "/bin/sleep", Args: ["100"] });
    const sig = await cli(["signal", "-d", s.url, "TERM", `${s.path}/sl`]);
    assertEquals(sig.code, 0, sig.stderr);
    const t = JSON.parse((await cli(["wait", "-d", s.url, `${s.path}/sl`])).stdout);
    assertEquals(t.State.ExitCode, 143, "128 + SIGTERM");
    assertOneLineError(
      await cli(["signal", "-d", s.url, "TERM", `${s.path}/sl`]),
      /not running/,
    );
  });

  Deno.test("scrub of a running container leaves no container behind", async () => {
    await using s = await dockerServer();
    const before = await containers();
    await mkdkr(s, "sl", { Image: "busybox", Path: "/bin/sleep", Args: ["100"] });
    assertEquals((await containers()).length, before.length + 1);
    assertEquals((await cli(["scrub", "-d", s.url, `${s.path}/sl`])).code, 0);
    assertEquals(await containers(), before);
    assertEquals((await cli(["ls", "-d", s.url, `${s.path}/...`])).stdout, "");
  });

  Deno.test("scrub while the engine does not answer fails with one line and keeps the element", async () => {
    const downFor = engine.downFor;
    if (!downFor) return; // an engine the tests did not start is not theirs to stop
    await using s = await dockerServer();
    const before = await containers();
    await mkdkr(s, "held", { Image: "busybox", Path: "/bin/sleep", Args: ["100"] });
    const r = await downFor(() => cli(["scrub", "-d", s.url, `${s.path}/held`]));
    assertOneLineError(r, /^Scrubbing \/X[0-9a-f]+\/held failed: Docker engine .* does not answer/);
    const ls = await cli(["ls", "-d", s.url, `${s.path}/...`]);
    assertEquals(ls.stdout, `${s.path}/held\n`, "the element stays, to be scrubbed again");
    assertEquals((await cli(["scrub", "-d", s.url, `${s.path}/held`])).code, 0);
    assertEquals(await containers(), before, "and then the container is gone");
  });

  Deno.test("Env, Dir, Volume, Memory and CpuShares are mapped (peek is docker inspect)", async () => {
    await using s = await dockerServer();
    const run = {
      image: "busybox", // keys are case-insensitive
      Path: "/bin/sh",
      Args: ["-c", "echo $A; pwd; cat /host/marker"],
      Env: ["A=1"],
      Dir: "/tmp",
      Volume: [`${s.varDir}:/host:ro`],
      Memory: 64 * 1024 * 1024,
      CpuShares: 3,
      Unknown: "ignored",
    };
    await Deno.writeTextFile(`${s.varDir}/marker`, "mounted\n");
    assertEquals((await mkdkr(s, "m", run)).code, 0);
    const v = JSON.parse((await cli(["wait", "-d", s.url, `${s.path}/m`])).stdout);
    assert(v.Config.Env.includes("A=1"), JSON.stringify(v.Config.Env));
    assertEquals(v.Config.WorkingDir, "/tmp");
    assertEquals(v.HostConfig.Binds, [`${s.varDir}:/host:ro`]);
    assertEquals([v.HostConfig.Memory, v.HostConfig.CpuShares], [64 * 1024 * 1024, 3]);
    assertEquals((await cli(["stdout", "-d", s.url, `${s.path}/m`])).stdout, "1\n/tmp\nmounted\n");
    const peek = JSON.parse((await cli(["peek", "-d", s.url, `${s.path}/m`])).stdout);
    assertEquals(peek.Id, v.Id);
  });

  Deno.test("an unknown image, a bad volume or Lxc options are one clear error, nothing left", async () => {
    await using s = await dockerServer();
    const before = await containers();
    assertOneLineError(await mkdkr(s, "x", { Image: "nosuchimage" }), /No such image: nosuchimage/);
    assertOneLineError(
      await mkdkr(s, "x", { Image: "busybox", Volume: ["relative:/x"] }),
      /Bad volume "relative:\/x"/,
    );
    assertOneLineError(
      await mkdkr(s, "x", { Image: "busybox", Lxc: ["lxc.aa_profile=unconfined"] }),
      /Lxc options are not supported/,
    );
    assertOneLineError(
      await cli(["mkdkr", "-d", s.url, `${s.path}/x`], { stdin: "{not json" }),
      /^command json not parsing/,
    );
    assertEquals(await containers(), before);
    assertEquals((await cli(["ls", "-d", s.url, `${s.path}/...`])).stdout, "", "no element left");
  });

  Deno.test("mkdkr on a server started without --docker is refused", async () => {
    await using s = await Server.start();
    assertOneLineError(
      await mkdkr(s, "x", { Image: "busybox", Path: "/bin/true" }),
      /not enabled on this server \(start it with --docker\)/,
    );
  });

  Deno.test("start --docker without a usable engine exits 1 with one line", async () => {
    const r = await cli(["start", "--docker", "--var", `/tmp/cdk-none-${Date.now()}`], {
      env: { DOCKER_HOST: "unix:///tmp/no-such-docker.sock" },
    });
    assertOneLineError(r, /^Enabling Docker elements failed: .*does not answer/);
  });

  Deno.test("--scrub removes the element and its container after exit", async () => {
    await using s = await dockerServer();
    const before = await containers();
    await mkdkr(s, "once", { Image: "busybox", Path: "/bin/true" }, ["--scrub"]);
    await waitFor(
      async () => (await cli(["ls", "-d", s.url, `${s.path}/...`])).stdout === "",
      "anchor freed",
    );
    assertEquals(await containers(), before, "the container is removed too");
  });

  Deno.test("scrub of a running --scrub container succeeds (its exit removes it too)", async () => {
    await using s = await dockerServer();
    const before = await containers();
    for (let i = 0; i < 4; i++) {
      await mkdkr(s, `auto${i}`, { Image: "busybox", Path: "/bin/sleep", Args: ["100"] }, [
        "--scrub",
      ]);
      const r = await cli(["scrub", "-d", s.url, `${s.path}/auto${i}`]);
      assertEquals([r.code, r.stderr], [0, ""], `scrub ${i}`);
    }
    assertEquals(await containers(), before);
    assertEquals((await cli(["ls", "-d", s.url, `${s.path}/...`])).stdout, "");
  });

  Deno.test("a server that stops removes the containers it started", async () => {
    const s = await dockerServer();
    try {
      const before = await containers();
      await mkdkr(s, "a", { Image: "busybox", Path: "/bin/sleep", Args: ["100"] });
      await mkdkr(s, "b", { Image: "busybox", Path: "/bin/true" });
      assertEquals((await containers()).length, before.length + 2);
      s.kill("SIGTERM");
      assertEquals((await s.status).code, 0);
      assertEquals(await containers(), before);
    } finally {
      await s[Symbol.asyncDispose]();
    }
  });

  Deno.test("a server restarted on the same --var removes what its predecessor left", async () => {
    const first = await dockerServer();
    const varDir = first.varDir;
    const before = await containers();
    try {
      await mkdkr(first, "a", { Image: "busybox", Path: "/bin/sleep", Args: ["100"] });
      first.kill("SIGKILL");
      await first.status;
      assertEquals((await containers()).length, before.length + 1, "left behind by a crash");
      await using second = await Server.start({
        varDir,
        args: ["--docker"],
        env: { DOCKER_HOST: host },
      });
      assertEquals(await containers(), before);
      assert(second.url !== first.url);
    } finally {
      await first[Symbol.asyncDispose]();
    }
  });

  Deno.test("library: makeDocker, stdout, wait and typed errors", async () => {
    await using s = await dockerServer();
    await using client = await connect(s.url);
    const c = await client.walk(`${s.path}/lib`).makeDocker({
      Image: "busybox",
      Path: "/bin/echo",
      Args: ["from the library"],
    });
    assertEquals(await new Response(c.stdout).text(), "from the library\n");
    assertEquals((await c.wait()).State.ExitCode, 0);
    await c.scrub();
    const err = await client.walk(`${s.path}/bad`).makeDocker({ Image: "nosuchimage" })
      .catch((e) => e);
    assert(err instanceof CircuitError && err.code === "not found", String(err));
  });

  Deno.test("docker engine for the tests stops", async () => {
    await engine.stop();
  });
}
