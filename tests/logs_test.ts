/**
 * Server logs on a real `circuit start` subprocess: `--log-level` filters, `--log-format
 * json` writes one object per line, `--log-file` picks the file (or none), and `ops.log`
 * rotates by size (the bound made tiny through `CIRCUIT_TEST_OPLOG_MAX_BYTES`).
 *
 * @module
 */

import { connect } from "../mod.ts";
import {
  assert,
  assertEquals,
  assertOneLineError,
  cli,
  Server,
  TempDir,
  waitFor,
} from "./_harness.ts";

/** The debug line every start writes (`server/server.ts`). */
const DEBUG_LINE = /bound 127\.0\.0\.1:\d+ \(tcp and udp\)/;

async function readLog(s: Server): Promise<string> {
  return await Deno.readTextFile(`${s.varDir}/server.log`);
}

Deno.test("--log-level: a debug line is absent at info (the default) and present at debug", async () => {
  {
    await using s = await Server.start();
    const text = await readLog(s);
    assert(/serving circuit:\/\//.test(text), text);
    assert(!DEBUG_LINE.test(text), text);
  }
  {
    await using s = await Server.start({ args: ["--log-level", "debug"] });
    assert(DEBUG_LINE.test(await readLog(s)), "debug line at debug");
  }
  {
    await using s = await Server.start({ args: ["--log-level", "warn"] });
    assertEquals(await readLog(s), "", "nothing below warn on a normal start");
  }
});

Deno.test("--log-format json: one object per line with time, level, category, message", async () => {
  await using s = await Server.start({ args: ["--log-format", "json", "--log-level", "debug"] });
  s.kill("SIGTERM");
  await s.status;
  const lines = (await readLog(s)).trim().split("\n");
  assert(lines.length >= 3, lines.join("\n"));
  for (const line of lines) {
    const o = JSON.parse(line);
    assertEquals(Object.keys(o), ["time", "level", "category", "message"], line);
    assert(!Number.isNaN(Date.parse(o.time)), line);
    assert(["debug", "info", "warn", "error"].includes(o.level), line);
    assert(o.category.startsWith("circuit."), line);
  }
  const stderr = (await s.stderr()).trim().split("\n");
  assertEquals(stderr, lines, "stderr carries the same lines");
  assert(lines.some((l) => JSON.parse(l).message === "stopping"), "stopping logged");
});

Deno.test("--log-file: none writes stderr only; PATH writes there; a normal start prints only log lines", async () => {
  using tmp = new TempDir();
  {
    await using s = await Server.start({ args: ["--log-file", "none"] });
    s.kill("SIGTERM");
    await s.status;
    assert(!(await exists(`${s.varDir}/server.log`)), "no server.log");
    const stderr = (await s.stderr()).trim().split("\n");
    // No warning boxes: every stderr line is a log line.
    for (const line of stderr) {
      assert(/^\S+ \S+ \S+ \[(INF|WRN|ERR|DBG)\] circuit/.test(line), line);
    }
    assert(stderr.some((l) => /serving circuit:/.test(l)), stderr.join("\n"));
  }
  {
    const path = `${tmp.path}/elsewhere.log`;
    await using s = await Server.start({ args: ["--log-file", path] });
    assert(/serving circuit:/.test(await Deno.readTextFile(path)));
    assert(!(await exists(`${s.varDir}/server.log`)), "only the file asked for");
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
  }
  const bad = await cli(["start", "--var", tmp.path, "--log-level", "verbose"]);
  assertOneLineError(bad, /--log-level must be debug, info, warn or error, got "verbose"/);
  assertOneLineError(
    await cli(["start", "--var", tmp.path, "--log-format", "xml"]),
    /--log-format must be text or json, got "xml"/,
  );
});

Deno.test("under the systemd journal (JOURNAL_STREAM names stderr) no server.log is written", async () => {
  using tmp = new TempDir();
  const journal = `${tmp.path}/journal`;
  await Deno.writeTextFile(journal, "");
  const st = await Deno.stat(journal);
  const prefix = ["sh", "-c", `exec "$@" 2>>'${journal}'`, "sh"];
  {
    await using s = await Server.start({ prefix, env: { JOURNAL_STREAM: `${st.dev}:${st.ino}` } });
    await waitFor(
      async () => /serving circuit:/.test(await Deno.readTextFile(journal)),
      "log line",
    );
    assert(!(await exists(`${s.varDir}/server.log`)), "no server.log under the journal");
  }
  {
    // JOURNAL_STREAM inherited but stderr elsewhere (a pipe): server.log as usual.
    await using s = await Server.start({ env: { JOURNAL_STREAM: `${st.dev}:${st.ino}` } });
    assert(/serving circuit:/.test(await readLog(s)));
  }
});

Deno.test("ops.log rotates at its bound into ops.log.1, keeping one old file", async () => {
  const bound = 600;
  await using s = await Server.start({ env: { CIRCUIT_TEST_OPLOG_MAX_BYTES: String(bound) } });
  {
    await using client = await connect(s.url);
    for (let i = 0; i < 20; i++) {
      await client.walk(`${s.path}/c${i}`).makeChan(1);
    }
  }
  const now = await Deno.readTextFile(`${s.varDir}/ops.log`);
  const old = await Deno.readTextFile(`${s.varDir}/ops.log.1`);
  assert(now.length <= bound && old.length <= bound, `${now.length} ${old.length}`);
  const names = [...Deno.readDirSync(s.varDir)].map((e) => e.name).filter((n) =>
    n.startsWith("ops.log")
  ).sort();
  assertEquals(names, ["ops.log", "ops.log.1"]);
  // The newest operation is last in ops.log; ops.log.1 holds those just before it.
  const recs = (t: string) => t.trim().split("\n").map((l) => JSON.parse(l));
  assertEquals(recs(now).at(-1).path, `${s.path}/c19`);
  const all = [...recs(old), ...recs(now)].map((r) => r.path);
  const first = Number(all[0].slice(all[0].lastIndexOf("/c") + 2));
  assertEquals(all, Array.from({ length: 20 - first }, (_, i) => `${s.path}/c${first + i}`));
  assertEquals((await Deno.stat(`${s.varDir}/ops.log`)).mode! & 0o777, 0o600);
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
