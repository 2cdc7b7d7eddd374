/**
 * Membership section of the benchmark: circuit servers beside `serf agent`, one host per
 * network namespace on a bridge (`bench/_netns.ts`, shared with the tests), keyed circuit
 * and encrypted serf.
 *
 * Figures, each for circuit and for serf in the same namespace layout:
 * - join convergence of 10, 25 and 50 members: every member started alone, then all
 *   but the first told at once to join the first (circuit: the server's `join`, serf: RPC
 *   `join`), until every member lists all; also every member spawned at once with `-j`
 *   / `-join` the first (process start-up included), and for circuit, with `--discover`
 *   (`by_size.ts`, `convergence.ts`);
 * - detection of a member killed with `kill -9` and of one stopped with SIGSTOP: until
 *   every other member no longer lists it (`detection.ts`);
 * - false leaves during a soak with one host's CPU busy and one host's link losing 10 %
 *   (`soak.ts`);
 * - idle RSS, CPU and bytes/s per member (`idle.ts`).
 *
 * What a member lists is asked by the bench itself, through an address it gives the
 * bridge inside the LAN's subnet (deleted with the bridge): circuit with the client
 * library (`ls /`), serf with its RPC (`members`, alive ones), each over one connection
 * per member, polled every few milliseconds only while the answer is awaited
 * (`systems.ts`, `ring.ts`).
 *
 * @module
 */

import { readKeyFile } from "../../../mod.ts";
import { netnsUnavailable } from "../../_netns.ts";
import { run } from "../../_cluster.ts";
import type { Section, SectionContext } from "../../_context.ts";
import { convergenceAndIdle } from "./by_size.ts";
import { type Params, params, TITLE } from "./common.ts";
import { detection } from "./detection.ts";
import { Lab, labs, roomForNeighbours } from "./lab.ts";
import { Rows } from "./rows.ts";
import { soakFigures } from "./soak.ts";
import { circuitSystem, serfSystem, type Systems } from "./systems.ts";

/** circuit, and serf when it is installed (noted with its version). */
async function systemsOf(ctx: SectionContext): Promise<Systems> {
  const key = await readKeyFile(ctx.keyFile);
  const circuit = circuitSystem(ctx, key);
  const serfVersion = await run("serf", ["version"]).catch(() => null);
  const serfWhy = serfVersion?.code === 0 ? null : "serf is not installed (Debian package serf)";
  const encryptKey = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
  const serf = serfWhy ? null : serfSystem(encryptKey);
  if (serfVersion?.code === 0) {
    ctx.note(
      `Section 10 peer: ${serfVersion.stdout.split("\n")[0].trim()} (\`serf agent\`, LAN ` +
        `profile, -encrypt with a random key; circuit keyed with --hmac), one member per ` +
        `namespace, each namespace a host on one bridge.`,
    );
  }
  return { circuit, serf, serfWhy };
}

/** Detection, then the soak, on one LAN of `P.detectHosts` hosts. */
async function detectionAndSoak(
  ctx: SectionContext,
  rows: Rows,
  systems: Systems,
  P: Params,
): Promise<void> {
  const n = P.detectHosts;
  ctx.progress(`membership: detection with ${n} hosts`);
  await using lab = await Lab.create(n);
  await detection(ctx, rows, lab, systems, P);
  // The soak, on the same LAN.
  await soakFigures(ctx, rows, lab, systems, P);
}

/**
 * Membership of circuit beside serf, in network namespaces.
 *
 * @param ctx the run's context
 */
async function membershipBench(ctx: SectionContext): Promise<void> {
  const P = params(ctx.quick);
  const why = await netnsUnavailable();
  if (why) {
    ctx.add({ section: TITLE, name: "all (skipped)", value: null, unit: "", notes: why });
    return;
  }
  const systems = await systemsOf(ctx);
  const restoreNeigh = await roomForNeighbours(Math.max(...P.sizes, P.detectHosts), ctx);
  const onSignal = () => {
    for (const lab of labs) lab.deleteSync();
    labs.clear();
    restoreNeigh();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const rows = new Rows(ctx);
  try {
    // Join convergence and idle cost, by size.
    for (const n of P.sizes) {
      try {
        await convergenceAndIdle(ctx, rows, systems, n, P);
      } finally {
        rows.flush();
      }
    }
    // Detection, then the soak.
    try {
      await detectionAndSoak(ctx, rows, systems, P);
    } finally {
      rows.flush();
    }
  } finally {
    for (const lab of [...labs]) await lab[Symbol.asyncDispose]().catch(() => {});
    restoreNeigh();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

/** Section 10. */
export const membershipSection: Section = { n: 10, title: TITLE, run: membershipBench };
