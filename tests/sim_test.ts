/**
 * The membership simulator (`tools/sim/`) on a small case: 50 real member lists in
 * virtual time, 10 % of datagrams lost; a join reaches everyone and a silent crash is
 * known everywhere within the suspicion bounds, and nobody alive is declared failed.
 */

import { assert } from "./_assert.ts";
import { SimCluster } from "../tools/sim/cluster.ts";
import { spread } from "../tools/sim/scenarios.ts";
import { membershipConfig, suspicionBounds } from "../net/membership/mod.ts";

Deno.test("sim: 50 members at 10 % loss converge after a join and a silent crash", async () => {
  const c = new SimCluster({ size: 50, seed: 7 });
  try {
    await c.bootstrap();
    assert(c.converged(), "not converged after bootstrap");
    c.net.loss = 0.1;

    const t0 = c.time.now;
    const joiner = await c.join(0);
    assert(await c.runUntil(() => c.converged(), 10_000), "the join did not reach everyone");
    const joins = c.sightings.filter((s) => s.subject === joiner && s.what === "join");
    assert(joins.length >= 50, `only ${joins.length} members saw the join`);
    const joinMax = Math.max(...joins.map((s) => s.at - t0));
    assert(joinMax < 5000, `the join took ${joinMax} ms to reach everyone`);

    const t1 = c.time.now;
    c.crash(17);
    assert(await c.runUntil(() => c.converged(), 60_000), "the crash was not known everywhere");
    const seen = spread(
      c.sightings.filter((s) => s.subject === 17 && s.what === "failed").map((s) => s.at - t1),
    );
    const bounds = suspicionBounds(membershipConfig("lan"), 50);
    assert(seen.n === 50, `${seen.n} members saw the crash`);
    assert(seen.p50 >= bounds.minMs, `detected in ${seen.p50} ms, below the suspicion floor`);
    assert(seen.max <= bounds.maxMs + 5000, `the last member took ${seen.max} ms`);

    const wrong = c.sightings.filter((s) => s.what === "failed" && !c.crashed[s.subject]);
    assert(wrong.length === 0, `live members declared failed: ${JSON.stringify(wrong)}`);
  } finally {
    await c.close();
  }
});
