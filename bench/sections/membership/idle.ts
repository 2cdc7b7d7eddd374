/**
 * Idle cost per member: RSS, CPU and the host's bytes/s over a quiet period, and the
 * failed or left reports the members made about one another.
 *
 * @module
 */

import { cpuPercent, type ProcSample, sampleProc } from "../../_proc.ts";
import { median, MiB, sleep } from "./common.ts";
import type { Lab } from "./lab.ts";
import { serverLog } from "./server_log.ts";
import type { Member } from "./systems.ts";

/** A member's process sample and its host's traffic counters. */
interface MemberSample extends ProcSample {
  /** Bytes the host sent. */
  tx: number;
  /** Bytes the host received. */
  rx: number;
}

async function sampleMember(lab: Lab, m: Member): Promise<MemberSample> {
  const proc = sampleProc(m.svc.pid);
  const peer = lab.peerOf(lab.hosts[m.host]);
  // The root end of the veth receives what the host sends.
  const rx = Number(await Deno.readTextFile(`/sys/class/net/${peer}/statistics/tx_bytes`));
  const tx = Number(await Deno.readTextFile(`/sys/class/net/${peer}/statistics/rx_bytes`));
  return { ...proc, tx, rx };
}

/** Idle cost per member, over the members of one cluster. */
export interface Idle {
  /** Median VmRSS, MiB. */
  rss: number;
  rssMin: number;
  rssMax: number;
  /** Mean CPU per member, % of one core. */
  cpu: number;
  cpuMax: number;
  /** Mean bytes/s sent per member (host → bridge). */
  sent: number;
  /** Mean bytes/s received per member. */
  recv: number;
  comm: string;
  /** Failed or left reports about members, from start to the end of the idle period. */
  flaps: number;
}

/**
 * Failed or left reports about one another over the members' lives so far: circuit's
 * server.log lines, serf's `EventMemberFailed`/`EventMemberLeave` log lines (the last
 * 4 KiB of its output).
 */
export async function flapsOf(members: Member[]): Promise<number> {
  const names = new Set(members.map((m) => m.name));
  let flaps = 0;
  for (const m of members) {
    if (m.varDir) {
      for (const e of await serverLog(m.varDir)) {
        if (e.what !== "joined" && names.has(e.id)) flaps++;
      }
    } else {
      for (const x of m.svc.stderrTail().matchAll(/EventMember(?:Failed|Leave): (\S+)/g)) {
        if (names.has(x[1])) flaps++;
      }
    }
  }
  return flaps;
}

/**
 * Sample every member before and after `seconds` of quiet.
 *
 * @param lab the LAN
 * @param members the cluster's members
 * @param seconds how long to leave them alone
 * @returns their idle cost
 */
export async function idle(lab: Lab, members: Member[], seconds: number): Promise<Idle> {
  await sleep(2000); // let the observers' connections close and joins settle
  const before = await Promise.all(members.map((m) => sampleMember(lab, m)));
  await sleep(seconds * 1000);
  const after = await Promise.all(members.map((m) => sampleMember(lab, m)));
  const per = members.map((_, i) => {
    const s = (after[i].at - before[i].at) / 1000;
    return {
      rss: after[i].rssKiB * 1024 / MiB,
      cpu: cpuPercent(before[i], after[i]),
      sent: (after[i].tx - before[i].tx) / s,
      recv: (after[i].rx - before[i].rx) / s,
    };
  });
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const comm = (await Deno.readTextFile(`/proc/${members[0].svc.pid}/comm`)).trim();
  const rss = per.map((p) => p.rss);
  return {
    rss: median(rss),
    rssMin: Math.min(...rss),
    rssMax: Math.max(...rss),
    cpu: mean(per.map((p) => p.cpu)),
    cpuMax: Math.max(...per.map((p) => p.cpu)),
    sent: mean(per.map((p) => p.sent)),
    recv: mean(per.map((p) => p.recv)),
    comm,
    flaps: await flapsOf(members),
  };
}
