/**
 * Churn in network namespaces: ten hosts, 20 % of them restarted every 2 s for 60 s (half
 * crashed, half stopped cleanly), must end with every host listing exactly the live set,
 * every stopped server reported gone and no live one reported left. Its own file so the
 * minute it takes runs beside the other membership tests. Needs root and iproute2;
 * otherwise SKIPPED with the reason (a failure under CI=true).
 */

import { assertEquals, keyFile, skipTest, TempDir, waitFor } from "./_harness.ts";
import { Lan } from "./_netns.ts";
import {
  disposeAll,
  everyoneLists,
  falseLeaves,
  leaveReports,
  type Run,
  startRun,
  whyUnavailable,
} from "./_members.ts";

const netns = await whyUnavailable([]);
if (netns) {
  skipTest("membership churn", netns);
} else {
  Deno.test("churn: restarting 20 % of ten hosts every 2 s for 60 s ends with exactly the live set and no false leave", async () => {
    using tmp = new TempDir();
    const key = await keyFile(tmp.path);
    await using lan = await Lan.create(10);
    const all: Run[] = [];
    const live: Run[] = [];
    try {
      for (const h of lan.hosts) {
        const r = await startRun(h, key);
        all.push(r);
        live.push(r);
      }
      await waitFor(() => everyoneLists(live, key), "one cluster of ten", 10_000);
      const end = Date.now() + 60_000;
      let round = 0;
      while (Date.now() < end) {
        const tick = Date.now();
        const victims = [...live].sort(() => Math.random() - 0.5).slice(0, 2);
        await Promise.all(victims.map(async (v) => {
          // Alternate crashes and clean stops: both must end the same way.
          v.killedAt = Date.now();
          v.server.kill(round % 2 === 0 ? "SIGKILL" : "SIGTERM");
          await v.server.status;
          live.splice(live.indexOf(v), 1);
          const r = await startRun(v.host, key);
          all.push(r);
          live.push(r);
        }));
        round++;
        await new Promise((r) => setTimeout(r, Math.max(0, 2000 - (Date.now() - tick))));
      }
      const quiet = Date.now();
      await waitFor(
        () => everyoneLists(live, key),
        "every host to list exactly the live set",
        15_000,
      );
      console.log(
        `${round} rounds, ${all.length} servers; converged ${Date.now() - quiet} ms after`,
      );
      // Every server that was stopped was reported gone (so the log check below has teeth).
      const reported = new Set((await leaveReports(all)).map((r) => r.about));
      const unreported = all.filter((r) => r.killedAt !== undefined && !reported.has(r.id));
      assertEquals(unreported.map((r) => r.id), [], "stopped servers nobody reported gone");
      const wrong = await falseLeaves(all);
      assertEquals(wrong.map((w) => `X${w.by}: ${w.line}`), [], "a live host was reported left");
    } finally {
      await disposeAll(all);
    }
  });
}
