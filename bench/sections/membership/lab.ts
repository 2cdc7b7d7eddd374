/**
 * The membership section's LAN: a reachable {@linkcode Lan} of network namespaces and the
 * processes started in it, and room in the kernel's ARP table for every host.
 *
 * @module
 */

import { type Host, Lan } from "../../_netns.ts";
import type { Service } from "../../_cluster.ts";
import type { SectionContext } from "../../_context.ts";
import { errText } from "./common.ts";

/** Labs not yet deleted, for a synchronous clean-up on Ctrl-C. */
export const labs = new Set<Lab>();

/** A reachable {@linkcode Lan} and the processes started in it. */
export class Lab implements AsyncDisposable {
  readonly hosts: Host[];
  readonly #procs = new Set<Service>();
  readonly #paused = new Set<number>();

  private constructor(readonly lan: Lan) {
    this.hosts = lan.hosts;
  }

  /**
   * A LAN of `n` hosts, with an address for the bench on its bridge.
   *
   * @param n hosts
   * @returns the lab
   */
  static async create(n: number): Promise<Lab> {
    const lab = new Lab(await Lan.create(n, { reachable: true }));
    labs.add(lab);
    return lab;
  }

  /** The root-namespace end of a host's veth (its counters are the host's traffic). */
  peerOf(h: Host): string {
    return this.lan.peerOf(h);
  }

  /** Remember a process to stop when the lab is deleted. */
  track(svc: Service): void {
    this.#procs.add(svc);
  }

  /** Send a signal to a process started here; SIGSTOPped ones are resumed on clean-up. */
  signal(pid: number, sig: Deno.Signal): void {
    try {
      Deno.kill(pid, sig);
    } catch { /* gone */ }
    if (sig === "SIGSTOP") this.#paused.add(pid);
    if (sig === "SIGCONT" || sig === "SIGKILL") this.#paused.delete(pid);
  }

  /**
   * Stop processes started here.
   *
   * @param which those to stop; all when absent
   */
  async stop(which?: Service[]): Promise<void> {
    const list = which ?? [...this.#procs];
    for (const s of list) if (this.#paused.has(s.pid)) this.signal(s.pid, "SIGKILL");
    await Promise.all(list.map((s) => s.stop()));
    for (const s of list) this.#procs.delete(s);
  }

  /** Delete namespaces and bridge synchronously (Ctrl-C). */
  deleteSync(): void {
    for (const pid of this.#paused) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    this.lan.deleteSync();
  }

  /** Stop every process, then delete the namespaces and the bridge (and its address). */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.stop();
    } finally {
      await this.lan[Symbol.asyncDispose]();
      labs.delete(this);
    }
  }
}

/** The kernel's ARP-table thresholds, `1` to `3` appended. */
const NEIGH = "/proc/sys/net/ipv4/neigh/default/gc_thresh";

/**
 * Make the kernel's ARP table big enough. It is one table for every namespace: `n` hosts
 * that all talk to one another need about n² entries, and past `gc_thresh3` (1024 by
 * default) the kernel refuses new ones ("neighbor table overflow") and UDP sends fail
 * with ENOBUFS: 50 hosts then lose thousands of packets, and serf and circuit alike
 * report members failed. Raised for the section, restored after.
 *
 * @param n the most hosts at once
 * @param ctx the run's context, for the notes
 * @returns a function that restores the old thresholds (synchronous, idempotent)
 */
export async function roomForNeighbours(n: number, ctx: SectionContext): Promise<() => void> {
  const read = (i: number) => Number(Deno.readTextFileSync(`${NEIGH}${i}`).trim());
  let old: number[];
  try {
    old = [1, 2, 3].map(read);
  } catch {
    return () => {};
  }
  const need = n * (n + 2) + 1024; // the hosts, the bench's address, others' namespaces
  if (old[2] >= need && old[1] >= need / 2) return () => {};
  const want = [old[0], Math.max(old[1], need), Math.max(old[2], 2 * need)];
  try {
    // thresh1 ≤ thresh2 ≤ thresh3: raise the top first.
    for (const i of [3, 2]) await Deno.writeTextFile(`${NEIGH}${i}`, String(want[i - 1]));
  } catch (err) {
    ctx.note(
      `Section 10: could not raise the ARP table's size (${errText(err)}); with more ` +
        `than about 30 hosts, packets may be dropped for want of neighbour entries.`,
    );
    return () => {};
  }
  ctx.note(
    `Section 10 raised net.ipv4.neigh.default.gc_thresh2/3 from ${old[1]}/${old[2]} to ` +
      `${want[1]}/${want[2]} for its run (restored after): the kernel's ARP table is shared ` +
      `by every namespace, and ${n} hosts that all talk to one another need about ${n * n} ` +
      `entries; past gc_thresh3 UDP sends fail with ENOBUFS ("neighbor table overflow").`,
  );
  let done = false;
  return () => {
    if (done) return;
    done = true;
    try {
      // Only undo what is still ours.
      if (read(2) === want[1]) Deno.writeTextFileSync(`${NEIGH}2`, String(old[1]));
      if (read(3) === want[2]) Deno.writeTextFileSync(`${NEIGH}3`, String(old[2]));
    } catch { /* leave it */ }
  };
}
