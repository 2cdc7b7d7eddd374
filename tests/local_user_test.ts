/**
 * Keyless mode against another local user (issue 18, item 3): loopback does not separate
 * users, so a keyless server must refuse a client or a membership packet whose socket
 * belongs to another user, and keep its var directory to itself. The other user is
 * `nobody` (uid 65534) through `setpriv`; it runs the real CLI from a copy of our Deno
 * cache that it can read.
 */

import { lockVarDir } from "../server/var_dir.ts";
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

const NOBODY = 65534;
const AS_NOBODY = ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups"];

/** A Deno directory `nobody` can use: a copy of our npm cache, owned by nobody. */
async function nobodyDenoDir(tmp: string): Promise<string> {
  const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
  const denoDir = JSON.parse(new TextDecoder().decode(info.stdout)).denoDir as string;
  const dir = `${tmp}/deno`;
  await Deno.mkdir(dir);
  const cp = await new Deno.Command("cp", { args: ["-r", `${denoDir}/npm`, `${dir}/npm`] })
    .output();
  assert(cp.success, `copying the npm cache failed: ${new TextDecoder().decode(cp.stderr)}`);
  const own = await new Deno.Command("chown", { args: ["-R", `${NOBODY}:${NOBODY}`, tmp] })
    .output();
  assert(own.success, "chown of the copied cache failed");
  await Deno.chmod(tmp, 0o755);
  return dir;
}

const missing = Deno.uid() !== 0 ? "switching to another user needs root" : await missingTool(
  ["setpriv", "chown", "cp"],
);
if (missing) {
  skipTest("a keyless server refuses another local user", missing);
} else {
  Deno.test("a keyless server refuses another local user (TCP and membership UDP), and serves its own", async () => {
    using tmp = new TempDir();
    const denoDir = await nobodyDenoDir(tmp.path);
    const env = { DENO_DIR: denoDir, HOME: tmp.path };
    await using s = await Server.start();

    // nobody: one line, auth, exit 1, for a read and for a process.
    const ls = await cli(["ls", "-d", s.url, "/"], { prefix: AS_NOBODY, env });
    assertOneLineError(ls, /this keyless server accepts only its own user \(uid 0\); use a key/);
    const mk = await cli(["mkproc", "-d", s.url, `${s.path}/p`], {
      prefix: AS_NOBODY,
      env,
      stdin: JSON.stringify({ Path: "/usr/bin/id", Args: [] }),
    });
    assertOneLineError(mk, /accepts only its own user/);

    // The server's own user (root here) is served.
    const own = await cli(["ls", "-d", s.url, "/"]);
    assertEquals(own.stdout.trim(), s.path, `ls as root (stderr: ${own.stderr})`);
    const ps = await cli(["ls", "-d", s.url, `${s.path}/`]);
    assert(!ps.stdout.includes("/p"), `nobody made a process: ${ps.stdout}`);

    // Membership UDP from nobody's socket is dropped unread.
    const port = Number(/:(\d+)\//.exec(s.url)![1]);
    const junk = "6e6f742061206d656d62657273686970207061636b6574"; // "not a membership packet"
    const sent = await new Deno.Command(AS_NOBODY[0], {
      args: [
        ...AS_NOBODY.slice(1),
        Deno.execPath(),
        "run",
        "-A",
        new URL("./_udp_send.ts", import.meta.url).pathname,
        "127.0.0.1",
        String(port),
        ...new Array(5).fill(junk),
      ],
      env: { ...env, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(sent.success, `udp sender: ${new TextDecoder().decode(sent.stderr)}`);
    await waitFor(async () => {
      const r = await cli(["stk", "-d", s.url, s.path]);
      const dropped = JSON.parse(r.stdout).Membership?.packets?.dropped;
      return dropped?.foreign >= 5;
    }, "5 foreign membership packets dropped");
  });
}

if (!missing) {
  Deno.test("a keyless server does not take another local user's server as a peer", async () => {
    using tmp = new TempDir();
    const denoDir = await nobodyDenoDir(tmp.path);
    const env = { DENO_DIR: denoDir, HOME: tmp.path };
    // nobody's keyless server, which would serve root (root counts as any user).
    await using theirs = await Server.start({
      prefix: AS_NOBODY,
      env,
      varDir: `${tmp.path}/theirs`,
    });
    await using ours = await Server.start();
    const j = await cli(["join", "-d", ours.url, ours.path, theirs.url]);
    assertOneLineError(j, /belongs to another local user \(uid 65534\)/);
    const ls = await cli(["ls", "-d", ours.url, "/"]);
    assertEquals(ls.stdout.trim(), ours.path, `members after the refused join: ${ls.stderr}`);
  });
}

Deno.test("a var directory is 0700 and the server's files in it 0600", async () => {
  await using s = await Server.start();
  // One operation, so that every file the server writes exists.
  const r = await cli(["mkchan", "-d", s.url, `${s.path}/c`, "1"]);
  assertEquals(r.code, 0, `mkchan: ${r.stderr}`);
  assertEquals((await Deno.stat(s.varDir)).mode! & 0o7777, 0o700, "var dir mode");
  for (const f of ["server.log", "pid", "lock"]) {
    assertEquals((await Deno.stat(`${s.varDir}/${f}`)).mode! & 0o777, 0o600, `${f} mode`);
  }
});

Deno.test("an existing var directory and its files are narrowed; another user's is refused", async () => {
  using tmp = new TempDir();
  const dir = `${tmp.path}/var`;
  await Deno.mkdir(dir, { mode: 0o755 });
  await Deno.chmod(dir, 0o755);
  await Deno.writeTextFile(`${dir}/pid`, "1\n", { mode: 0o644 });
  await Deno.chmod(`${dir}/pid`, 0o644);
  await Deno.writeTextFile(`${dir}/server.log`, "old\n", { mode: 0o644 });
  await Deno.chmod(`${dir}/server.log`, 0o644);
  {
    await using s = await Server.start({ varDir: dir });
    assertEquals((await Deno.stat(dir)).mode! & 0o7777, 0o700, "var dir mode");
    assertEquals((await Deno.stat(`${dir}/pid`)).mode! & 0o777, 0o600, "pid mode");
    assertEquals((await Deno.stat(`${dir}/server.log`)).mode! & 0o777, 0o600, "log mode");
    assert(s.url.startsWith("circuit://"));
  }
  if (Deno.uid() === 0) {
    const theirs = `${tmp.path}/theirs`;
    await Deno.mkdir(theirs);
    await Deno.chown(theirs, NOBODY, NOBODY);
    let started: Server | null = null;
    try {
      started = await Server.start({ varDir: theirs });
    } catch (err) {
      const m = /^server exited (\d+) before printing a URL: (.*)$/s.exec((err as Error).message);
      assert(m, (err as Error).message);
      assertOneLineError(
        { code: Number(m[1]), stdout: "", stderr: m[2] },
        /belongs to another user \(uid 65534\)/,
      );
    }
    if (started) {
      await started[Symbol.asyncDispose]();
      throw new Error("a server started in another user's directory");
    }
  }
});

Deno.test("the default var directories' parent is made sticky and shared; each server's own is 0700", async () => {
  using tmp = new TempDir();
  const parent = `${tmp.path}/circuit`;
  const a = await lockVarDir(`${parent}/Xaaaa`, { sharedParent: true });
  try {
    assertEquals((await Deno.stat(parent)).mode! & 0o7777, 0o1777, "parent made like /tmp");
    assertEquals((await Deno.stat(a.path)).mode! & 0o7777, 0o700, "own dir");
    assertEquals((await Deno.stat(`${a.path}/pid`)).mode! & 0o777, 0o600, "pid");
  } finally {
    a.release();
  }
  // A parent that exists is left as it is.
  await Deno.chmod(parent, 0o755);
  const b = await lockVarDir(`${parent}/Xbbbb`, { sharedParent: true });
  b.release();
  assertEquals((await Deno.stat(parent)).mode! & 0o7777, 0o755, "existing parent untouched");
});
