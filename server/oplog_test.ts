import { OpLog, OPLOG_BACKLOG_LINES } from "./oplog.ts";
import { assert, assertEquals, skipTest, TempDir, waitFor } from "../tests/_harness.ts";
import { Tmpfs } from "../tests/_tmpfs.ts";

function lines(path: string): Array<Record<string, string>> {
  return Deno.readTextFileSync(path).split("\n").filter((l) => l).map((l) => JSON.parse(l));
}

const noTmpfs = await Tmpfs.unavailable();

Deno.test("oplog: ops.log is made 0600, and an older file is made 0600 too", () => {
  using fs = new TempDir();
  const fresh = new OpLog(`${fs.path}/ops.log`);
  fresh.close();
  assertEquals((Deno.statSync(`${fs.path}/ops.log`).mode! & 0o777).toString(8), "600");
  Deno.writeTextFileSync(`${fs.path}/old.log`, "", { mode: 0o644 });
  Deno.chmodSync(`${fs.path}/old.log`, 0o644);
  new OpLog(`${fs.path}/old.log`).close();
  assertEquals((Deno.statSync(`${fs.path}/old.log`).mode! & 0o777).toString(8), "600");
});

const FULL = "oplog: on a full disk no write throws; lines wait, in order, and lost ones are noted";
if (noTmpfs) skipTest(FULL, noTmpfs);
else {
  Deno.test(FULL, async () => {
    await using fs = await Tmpfs.mount("1m") as Tmpfs;
    const path = `${fs.path}/ops.log`;
    const reports: string[] = [];
    const log = new OpLog(path, { report: (m) => reports.push(m) });
    try {
      log.write({ caller: "t", op: "first", path: "/", outcome: "ok" });
      const filler = await fs.fill();
      // The file's last page may still have room: write until a line waits.
      let n = 0;
      while (log.stats().Pending === 0 && n < 100_000) {
        log.write({ caller: "t", op: `fill ${n++}`, path: "/", outcome: "ok" });
      }
      assert(log.stats().Pending === 1, `no line waited after ${n} writes`);
      const extra = 5;
      for (let i = 1; i < OPLOG_BACKLOG_LINES + extra; i++) {
        log.write({ caller: "t", op: `held ${i}`, path: "/", outcome: "ok" });
      }
      const full = log.stats();
      assertEquals([full.Pending, full.Lost], [OPLOG_BACKLOG_LINES, extra], "stats while full");
      assert(/No space left/.test(full.Error ?? ""), `Error: ${full.Error}`);
      assertEquals(reports.length, 1, `reported once: ${reports}`);

      await Deno.remove(filler);
      log.write({ caller: "t", op: "after", path: "/", outcome: "ok" });
      assertEquals(log.stats(), { Pending: 0, Lost: extra, Error: null });
      const ops = lines(path).map((l) => l.op);
      assertEquals(ops.length, 1 + n + OPLOG_BACKLOG_LINES - 1 + 1 + 1, "lines in the file");
      assertEquals(ops.at(-3), `held ${OPLOG_BACKLOG_LINES - 1}`);
      assertEquals(ops.at(-2), "oplog");
      assertEquals(
        lines(path).at(-2)!.outcome,
        `error: ${extra} lines lost: ops.log could not be written`,
      );
      assertEquals(ops.at(-1), "after");
      assertEquals(ops.filter((o) => o.startsWith("fill ")).length, n, "every line in order");
      assertEquals(reports.length, 2, `reported once more on recovery: ${reports}`);
    } finally {
      log.close();
    }
  });

  Deno.test("oplog: lines held back are written once there is room, with no new line", async () => {
    await using fs = await Tmpfs.mount("1m") as Tmpfs;
    const path = `${fs.path}/ops.log`;
    const log = new OpLog(path);
    try {
      const filler = await fs.fill();
      log.write({ caller: "t", op: "held", path: "/", outcome: "ok" });
      assertEquals(log.stats().Pending, 1, "held");
      assertEquals(Deno.readTextFileSync(path), "");
      await Deno.remove(filler);
      await waitFor(() => log.stats().Pending === 0, "the held line to be written", 10_000);
      assertEquals(lines(path).map((l) => l.op), ["held"]);
    } finally {
      log.close();
    }
  });
}
