/**
 * The soak: a cluster left alone with one host's CPU busy and one host's link losing
 * 10 %, counting the false leaves (failed or left reports about members that never
 * stopped) and rejoins; circuit beside serf on one LAN.
 *
 * @module
 */

import { run, spawnDaemon } from "../../_cluster.ts";
import type { SectionContext } from "../../_context.ts";
import { SerfRpc } from "../../_serf_rpc.ts";
import { type Params, SERF_RPC_PORT, sh, sleep } from "./common.ts";
import type { Lab } from "./lab.ts";
import { Ring } from "./ring.ts";
import { attempt, type Rows } from "./rows.ts";
import { serverLog } from "./server_log.ts";
import type { System, Systems } from "./systems.ts";

/** How the soak disturbs the LAN. */
interface Disturbance {
  /** The host whose core is kept busy; its member is pinned to that core. */
  loaded: number;
  /** The host whose outgoing packets are lost at 10 %. */
  lossy: number;
  /** The core, or undefined when taskset does not work. */
  pin?: string;
  /** How the loss is made, for the notes. */
  lossHow: string;
  /** How the load is made. */
  loadHow: string;
}

/** 10 % loss on a host's outgoing packets: netem when the kernel has it, else nftables. */
async function addLoss(lab: Lab, host: number): Promise<string> {
  const h = lab.hosts[host];
  const netem = await run("ip", [
    ...["netns", "exec", h.ns, "tc", "qdisc", "add", "dev", h.iface],
    ...["root", "netem", "loss", "10%"],
  ]);
  if (netem.code === 0) return `tc qdisc add dev ${h.iface} root netem loss 10% (in its namespace)`;
  const rules =
    `table netdev loss {\n  chain out {\n    type filter hook egress device "${h.iface}" ` +
    `priority 0; policy accept;\n    numgen random mod 10 0 drop;\n  }\n}\n`;
  const file = `${h.ns}.nft`;
  const path = `${Deno.makeTempDirSync({ prefix: "circuit-bench-nft-" })}/${file}`;
  try {
    await Deno.writeTextFile(path, rules);
    await sh("ip", ["netns", "exec", h.ns, "nft", "-f", path]);
  } finally {
    await Deno.remove(path.slice(0, path.lastIndexOf("/")), { recursive: true }).catch(() => {});
  }
  return `nftables netdev egress hook on ${h.iface} in its namespace, \`numgen random mod 10 0 ` +
    `drop\` (silent, like netem; this kernel has no sch_netem: "${
      netem.stderr.trim().split("\n")[0]
    }")`;
}

/** Load one host's core and make another host's link lossy. */
async function disturb(ctx: SectionContext, lab: Lab): Promise<Disturbance> {
  const cores = navigator.hardwareConcurrency;
  const loaded = 1, lossy = 2;
  const pin = ctx.pinnable ? String(Math.max(0, cores - 1)) : undefined;
  const loops = 2;
  const h = lab.hosts[loaded];
  for (let i = 0; i < loops; i++) {
    const args = ["netns", "exec", h.ns, ...(pin ? ["taskset", "-c", pin] : [])];
    args.push("sh", "-c", "while :; do :; done");
    lab.track(await spawnDaemon({ cmd: "ip", args }, () => Promise.resolve(true)));
  }
  const loadHow = pin
    ? `${loops} busy loops (\`sh -c 'while :; do :; done'\`) pinned with taskset to core ${pin}, ` +
      `where host ${loaded + 1}'s member is pinned too`
    : `${loops} busy loops, unpinned (taskset does not work here)`;
  const lossHow = await addLoss(lab, lossy);
  return { loaded, lossy, pin, lossHow, loadHow };
}

/** What one system's soak saw. */
interface Soak {
  /** Failed or left events about members that never stopped, summed over observers. */
  falseLeaves: number;
  /** Rejoins seen (joins after the soak started). */
  rejoins: number;
  detail: string;
}

/**
 * Join `n` members to the first (host `d.loaded`'s pinned), converge, then leave them
 * alone for `seconds` and count what they reported about one another.
 */
async function soak(
  sys: System,
  lab: Lab,
  n: number,
  d: Disturbance,
  seconds: number,
  progress: (s: string) => void,
): Promise<Soak> {
  const ring = new Ring(sys, lab);
  const streams: SerfRpc[] = [];
  try {
    const seed = await ring.add(0, d.loaded === 0 ? { pin: d.pin } : {});
    await Promise.all(
      Array.from({ length: n - 1 }, (_, k) => k + 1).map((i) =>
        ring.add(i, { join: seed, pin: i === d.loaded ? d.pin : undefined })
      ),
    );
    await ring.converged(120_000);
    const names = new Set(ring.names());
    const wallStart = Date.now();
    let falseLeaves = 0, rejoins = 0;
    const byWhom = new Map<string, number>();
    // A rejoin is a join an observer reports after it reported that member gone.
    const gone = new Set<string>();
    const seen = (observer: string, member: string, joined: boolean) => {
      if (!names.has(member) || member === observer) return;
      if (joined) {
        if (gone.delete(`${observer} ${member}`)) rejoins++;
        return;
      }
      falseLeaves++;
      gone.add(`${observer} ${member}`);
      byWhom.set(member, (byWhom.get(member) ?? 0) + 1);
    };
    if (sys.label === "serf") {
      for (const { m } of ring.members.values()) {
        const rpc = await SerfRpc.connect(m.addr.split(":")[0], SERF_RPC_PORT);
        streams.push(rpc);
        await rpc.stream("member-join,member-failed,member-leave", (e) => {
          for (const x of e.Members ?? []) seen(m.name, x.Name, e.Event === "member-join");
        });
      }
    }
    ring.closeViews(); // no polling during the soak
    progress(`${sys.label}: soak of ${seconds} s with ${n} members`);
    await sleep(seconds * 1000);
    const wallEnd = Date.now();
    if (sys.label === "circuit") {
      for (const { m } of ring.members.values()) {
        for (const e of await serverLog(m.varDir!)) {
          if (e.at >= wallStart && e.at <= wallEnd) seen(m.name, e.id, e.what === "joined");
        }
      }
    }
    // Who lists whom at the end, and circuit's SWIM counters.
    let missing = 0;
    const stks: Record<string, unknown>[] = [];
    for (const { m } of ring.members.values()) {
      const v = await sys.view(m);
      try {
        const got = await v.list();
        for (const name of names) if (!got.has(name)) missing++;
        if (v.stk) stks.push(await v.stk());
      } finally {
        v.close();
      }
    }
    const suspicions = stks.length ? swimCounters(stks) : "";
    const hostOf = (name: string) =>
      [...ring.members.values()].find((x) => x.m.name === name)?.m.host ?? -1;
    const who = [...byWhom].map(([name, k]) => `host ${hostOf(name) + 1} ×${k}`).join(", ");
    return {
      falseLeaves,
      rejoins,
      detail: `${missing} (member, member) pairs missing at the end` +
        (who ? `; reported about: ${who}` : "") + (suspicions ? `; ${suspicions}` : ""),
    };
  } finally {
    for (const s of streams) s.close();
    await ring.stop();
  }
}

/** Sum of SWIM counters over the servers, from their `stk`. */
function swimCounters(stks: Record<string, unknown>[]): string {
  let failed = 0, indirect = 0, refutations = 0;
  for (const stk of stks) {
    const m = stk.Membership as
      | { refutations?: number; probes?: { failed?: number; indirectAcked?: number } }
      | undefined;
    failed += m?.probes?.failed ?? 0;
    indirect += m?.probes?.indirectAcked ?? 0;
    refutations += m?.refutations ?? 0;
  }
  return `SWIM counters summed over the servers since start: ${failed} probes failed ` +
    `(each starts a suspicion), ${indirect} acked only through others, ${refutations} ` +
    `refutations`;
}

/**
 * The soak of circuit beside serf on the LAN; rows recorded.
 *
 * @param ctx the run's context
 * @param rows the section's rows
 * @param lab the LAN of `P.detectHosts` hosts
 * @param systems circuit, and serf or why not
 * @param P the section's sizes
 */
export async function soakFigures(
  ctx: SectionContext,
  rows: Rows,
  lab: Lab,
  systems: Systems,
  P: Params,
): Promise<void> {
  const { circuit, serf, serfWhy } = systems;
  const n = P.detectHosts;
  const d = await disturb(ctx, lab);
  const soakHow = `${n} members joined to the first, converged, then left alone for ` +
    `${P.soakS} s; host ${d.loaded + 1} under CPU load: ${d.loadHow}; host ${d.lossy + 1}'s ` +
    `outgoing packets lost at 10 %: ${d.lossHow}`;
  const sSoak = serf
    ? await attempt(
      ctx,
      rows,
      "serf: soak",
      () => soak(serf, lab, n, d, P.soakS, ctx.progress),
    )
    : null;
  const cSoak = await attempt(
    ctx,
    rows,
    "soak",
    () => soak(circuit, lab, n, d, P.soakS, ctx.progress),
  );
  if (cSoak) {
    rows.add({
      name: `false leaves in ${P.soakS} s (load + 10 % loss)`,
      value: cSoak.falseLeaves,
      unit: "events",
      goal: { op: "<=", value: 0 },
      notes: `${soakHow}; \`member X… failed\`/\`left\` lines in every server.log about ` +
        `members that never stopped, summed over servers; ${cSoak.rejoins} rejoins; ` +
        `${cSoak.detail}. goal: 0 (issue)`,
    });
  }
  if (sSoak) {
    rows.add({
      name: `serf: false leaves in ${P.soakS} s (load + 10 % loss)`,
      value: sSoak.falseLeaves,
      unit: "events",
      notes: `same; member-failed/member-leave events from every agent's RPC \`stream\` ` +
        `about members that never stopped; ${sSoak.rejoins} rejoins; ${sSoak.detail}`,
    });
  } else if (!serf) {
    rows.add({ name: "serf: soak (skipped)", value: null, unit: "", notes: serfWhy! });
  }
}
