/**
 * A simulated cluster: real {@linkcode Memberlist}s on a {@linkcode SimNetwork}, driven by
 * {@linkcode VirtualTime}, with what the scenarios need: bootstrap into a converged
 * cluster, crash (silently, or as `kill -9` whose watchers see the port refuse), join,
 * starve, partition, and a record of what each member saw when.
 *
 * @module
 */

import {
  type Addr,
  Memberlist,
  type MembershipConfig,
  type MembershipProfile,
} from "../../net/membership/mod.ts";
import { SimNetwork } from "./network.ts";
import { VirtualTime } from "./virtual_time.ts";

/** Options of {@linkcode SimCluster}. */
export interface SimClusterOptions {
  /** Members at start. */
  size: number;
  /** Timing profile. @default {"lan"} */
  profile?: MembershipProfile;
  /** Config overrides on top of the profile. */
  config?: Partial<MembershipConfig>;
  /** Two datacenters (half the members each) this far apart one way, in ms; 0: one. */
  interDcMs?: number;
  /** Seed of the random source (members' choices, loss, latency jitter). @default {1} */
  seed?: number;
}

/** What one member saw happen to another, and when (virtual ms). */
export interface Sighting {
  /** Who saw it. */
  observer: number;
  /** About whom. */
  subject: number;
  /** `join`, or a leave: `failed` or `left`. */
  what: "join" | "failed" | "left";
  /** Virtual time. */
  at: number;
}

/** A member's starvation: it runs only `runMs` out of every `periodMs`. */
interface Starve {
  periodMs: number;
  runMs: number;
  phaseMs: number;
}

/** A seeded random source (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Real member lists in one process, on a simulated network, in virtual time. */
export class SimCluster {
  readonly time: VirtualTime;
  readonly net: SimNetwork;
  readonly members: (Memberlist | undefined)[] = [];
  readonly ids: string[] = [];
  readonly sightings: Sighting[] = [];
  /** Whether each member's process is gone (crashed or stopped). */
  readonly crashed: boolean[] = [];
  #o: SimClusterOptions;
  #random: () => number;
  #savedRandom = Math.random;
  #starved = new Map<number, Starve>();
  #recording = false;

  /**
   * Make the cluster (nothing runs before {@linkcode SimCluster.bootstrap}).
   *
   * @param options size, profile, datacenters, seed
   */
  constructor(options: SimClusterOptions) {
    this.#o = options;
    this.#random = seededRandom(options.seed ?? 1);
    this.time = new VirtualTime();
    this.net = new SimNetwork({
      time: this.time,
      interDcMs: options.interDcMs ?? 0,
      random: this.#random,
    });
    this.time.gate = (owner, at) => this.#gate(owner, at);
  }

  /** Live members (not crashed). */
  get live(): number[] {
    return this.ids.map((_, i) => i).filter((i) => !this.crashed[i]);
  }

  /**
   * Install virtual time and the seeded random source, make every member, and let each
   * know all others at once (as a push-pull with everyone would), then run until the
   * news of that has been sent out (the `alive` gossip itself is not carried: it would
   * tell everyone what everyone knows). Sightings are recorded from then on.
   *
   * @param settleMs virtual time to let the cluster settle
   */
  async bootstrap(settleMs = 3000): Promise<void> {
    this.time.install();
    Math.random = this.#random;
    const dcs = (this.#o.interDcMs ?? 0) > 0 ? 2 : 1;
    for (let i = 0; i < this.#o.size; i++) this.#add(i % dcs);
    await Promise.all(this.members.map((m, i) => this.#as(i, () => m!.start())));
    const all = this.members.flatMap((m) => m!.state());
    this.net.quiet = true;
    for (let i = 0; i < this.members.length; i++) {
      this.#as(i, () => this.members[i]!.merge(all, "bootstrap"));
    }
    await this.run(settleMs);
    // Until every member has sent the news of all the others as often as it will.
    await this.runUntil(() => this.members.every((m) => m!.stats().queue.depth === 0), 60_000, 500);
    this.net.quiet = false;
    this.#recording = true;
  }

  /**
   * Run virtual time forward.
   *
   * @param ms how far
   */
  async run(ms: number): Promise<void> {
    await this.time.runUntil(this.time.now + ms);
  }

  /**
   * Run until `done()` holds or `maxMs` passed, checking every `stepMs`.
   *
   * @param done the condition
   * @param maxMs the bound
   * @param stepMs how often to check
   * @returns whether it held
   */
  async runUntil(done: () => boolean, maxMs: number, stepMs = 50): Promise<boolean> {
    const end = this.time.now + maxMs;
    while (this.time.now < end) {
      if (done()) return true;
      await this.run(Math.min(stepMs, end - this.time.now));
    }
    return done();
  }

  /**
   * A new member joins through one seed (a push-pull over the hook).
   *
   * @param seed the member it is told to join
   * @returns its index
   */
  async join(seed: number): Promise<number> {
    const i = this.#add(this.ids.length % ((this.#o.interDcMs ?? 0) > 0 ? 2 : 1));
    await this.#as(i, () => this.members[i]!.start());
    const addr = this.#addr(seed);
    this.#as(i, () => {
      this.members[i]!.join([addr]).catch(() => {});
    });
    return i;
  }

  /**
   * A member's process is gone: it sends and answers nothing from now on.
   *
   * @param i the member
   * @param proof like `kill -9` in a server: the members holding a connection to it (its
   *   three predecessors in id order, the watch ring) see it close and its port refuse a
   *   redial one round trip later, and report it with `failed()`
   */
  crash(i: number, proof = false): void {
    this.crashed[i] = true;
    this.net.down[i] = true;
    const m = this.members[i]!;
    this.#as(i, () => void m.stop());
    if (!proof) return;
    const live = this.live;
    const pos = live.findIndex((j) => j > i);
    for (let k = 1; k <= 3 && k < live.length; k++) {
      const w = live[(pos - k + live.length * 4) % live.length];
      const rtt = this.net.latency(w, i) + this.net.latency(i, w);
      this.time.schedule(
        () => {
          if (!this.crashed[w]) this.members[w]!.failed(this.ids[i]);
        },
        rtt,
        w,
        1,
      );
    }
  }

  /**
   * Starve a member: it runs only `runMs` out of every `periodMs` (timers and datagrams
   * wait for its next slice; overdue timers fire before datagrams are read).
   *
   * @param i the member
   * @param options the slice and the period, in ms
   */
  starve(i: number, options: { runMs: number; periodMs: number }): void {
    this.#starved.set(i, { ...options, phaseMs: this.#random() * options.periodMs });
  }

  /**
   * Whether every live member lists exactly the live members.
   *
   * @returns convergence
   */
  converged(): boolean {
    const want = this.live.map((i) => this.ids[i]).sort().join(",");
    return this.live.every((i) => this.members[i]!.members().map((m) => m.id).join(",") === want);
  }

  /** Stop every member and put the real timers back. */
  async close(): Promise<void> {
    for (let i = 0; i < this.members.length; i++) {
      if (!this.crashed[i]) await this.members[i]!.stop();
    }
    this.time.uninstall();
    Math.random = this.#savedRandom;
  }

  #addr(i: number): Addr {
    return this.members[i]!.self.addr;
  }

  #add(dc: number): number {
    const { index, addr } = this.net.add(dc);
    const id = index.toString(16).padStart(16, "0");
    this.ids.push(id);
    this.crashed.push(false);
    const m = new Memberlist({
      self: { id, url: `circuit://${addr.host}:${addr.port}/${index}/Q${id}`, addr },
      profile: this.#o.profile ?? "lan",
      config: this.#o.config,
      transport: this.net.transport(index),
      pushPull: this.net.pushPullHook(index, (j, local, from) => {
        const peer = this.members[j];
        return peer ? peer.handleSync(local, from) : [];
      }, id),
    });
    this.members.push(m);
    m.subscribe((e) => {
      if (!this.#recording) return;
      const subject = parseInt(e.member.id, 16);
      const what = e.type === "join" ? "join" : e.reason;
      this.sightings.push({ observer: index, subject, what, at: this.time.now });
    });
    return index;
  }

  /** Run `fn` as member `i` (timers it sets are its own). */
  #as<T>(i: number, fn: () => T): T {
    const was = this.time.current;
    this.time.current = i;
    try {
      return fn();
    } finally {
      this.time.current = was;
    }
  }

  #gate(owner: number, at: number): number {
    const s = this.#starved.get(owner);
    if (!s) return at;
    const into = (at - s.phaseMs) % s.periodMs;
    const pos = into < 0 ? into + s.periodMs : into;
    return pos < s.runMs ? at : at + (s.periodMs - pos);
  }
}
