/**
 * The SWIM member list: ties the member states, the probe cycle, the broadcast queue,
 * push-pull and the UDP transport together, and runs three loops (probe, gossip,
 * push-pull). Every packet it sends piggybacks queued gossip.
 *
 * @module
 */

import { getLogger, type Logger } from "@logtape/logtape";
import { type Clock, SYSTEM_CLOCK } from "../clock.ts";
import { pickRandom } from "./_random.ts";
import { Awareness, REFUTE_AWARENESS_DELTA } from "./awareness.ts";
import { type MembershipConfig, membershipConfig, type MembershipProfile } from "./config.ts";
import { CircuitError } from "../errors.ts";
import { Gossip, type PacketStats } from "./gossip.ts";
import {
  type Addr,
  addrKey,
  checkRecords,
  MAX_INCARNATION,
  type MemberRecord,
  type MemberStatus,
  type Message,
} from "./messages.ts";
import { ProbeOrder, Prober, type ProbeStats, type ProbeTarget } from "./probe.ts";
import {
  mergeRemoteState,
  PushPull,
  type PushPullHook,
  pushPullIntervalMs,
  type PushPullStats,
  stateRecords,
} from "./push_pull.ts";
import type { BroadcastQueueStats } from "./queue.ts";
import { type Member, type MemberEvent, MemberStates } from "./state.ts";
import { type AdmitFn, type PacketTransport, UdpTransport } from "./transport.ts";
import { waitFor } from "./_wait.ts";

/** Options of {@linkcode Memberlist}. */
export interface MemberlistOptions {
  /**
   * Ourselves: id, circuit URL, the UDP address others reach us at (port 0: any free port,
   * advertised once bound), process start in ms since the epoch (default: now).
   */
  self: { id: string; url: string; addr: Addr; start?: number };
  /** The cluster key: packets are signed and checked when given. */
  key?: Uint8Array;
  /** Timing profile. @default {"lan"} */
  profile?: MembershipProfile;
  /** Overrides on top of the profile. */
  config?: Partial<MembershipConfig>;
  /** Timers and time (a simulator or a test passes a manual clock). @default {SYSTEM_CLOCK} */
  clock?: Clock;
  /** Push-pull over another channel instead of UDP chunks. */
  pushPull?: PushPullHook;
  /** A bound transport to use instead of a UDP socket on `self.addr`; closed by `stop()`. */
  transport?: PacketTransport;
  /**
   * Filters senders of the UDP socket bound on `self.addr` (the `admit` option of
   * `UdpTransport.bind`); ignored when `transport` is given (pass it to `UdpTransport.bind`
   * then).
   */
  admit?: AdmitFn;
  /**
   * Told when a member missed a direct probe (before the indirect probes): evidence found
   * elsewhere (a refused port) can then be reported through `failed()`.
   */
  onUnanswered?: (id: string) => void;
  /**
   * Told when a live member is accused here (it becomes suspect, by our probe or someone's
   * word, or someone claims it dead at an older incarnation than we know): evidence found
   * elsewhere (a refused port) can then be reported through `failed()` instead of waiting
   * out the suspicion.
   */
  onAccused?: (id: string) => void;
}

/** Counters and depths for `stk`. */
export interface MembershipStats {
  /** Remembered members by state, ourselves included. */
  members: Record<MemberStatus, number>;
  /** Our incarnation. */
  incarnation: number;
  /** Local health score (0 is healthy). */
  awareness: number;
  /** Suspicions of ourselves refuted. */
  refutations: number;
  /** The broadcast queue. */
  queue: BroadcastQueueStats;
  /** The probe cycle. */
  probes: ProbeStats;
  /** Datagrams. */
  packets: PacketStats;
  /** Push-pulls we started (`sent`, `failed`) and answered (`received`). */
  syncs: PushPullStats;
  /** Gossip rounds run (the loop sleeps while there is nothing to say or nobody to tell). */
  gossipRounds: number;
  /**
   * Timers that fired more than `stallMs` late (we were starved): probe ticks, and
   * suspicions re-armed instead of ending in a death.
   */
  stalls: number;
}

/** A SWIM member list with Lifeguard's refinements. */
export class Memberlist implements AsyncDisposable {
  #o: MemberlistOptions;
  #config: MembershipConfig;
  #clock: Clock = SYSTEM_CLOCK;
  #log: Logger;
  #state: MemberStates;
  #gossip: Gossip;
  #awareness: Awareness;
  #prober: Prober;
  #order = new ProbeOrder();
  #transport: PacketTransport | undefined;
  #seq = 0;
  #timers = new Set<number>();
  #running = false;
  /** The armed gossip round and when it is due; undefined while the loop sleeps. */
  #gossipTimer: number | undefined;
  #gossipDue = Infinity;
  #lastGossipAt = -Infinity;
  #gossipRounds = 0;
  #probingAccused = new Set<string>();
  #stopped = false;
  #pushPull: PushPull;
  #catchUpArmed = false;
  #stalls = 0;

  /**
   * Make a member list; nothing is bound or sent before {@linkcode Memberlist.start}.
   *
   * @param options ourselves, key, profile and overrides, optional push-pull hook
   * @throws {CircuitError} `bad request` for a bad config
   */
  constructor(options: MemberlistOptions) {
    this.#o = options;
    this.#config = membershipConfig(options.profile, options.config);
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#log = getLogger(["circuit", "membership"]).with({ self: options.self.id });
    this.#awareness = new Awareness(this.#config.awarenessMaxMultiplier);
    this.#gossip = new Gossip({
      config: this.#config,
      key: options.key,
      liveCount: () => this.#state.liveCount(),
      log: this.#log,
    });
    this.#state = new MemberStates({
      self: { ...options.self, start: options.self.start ?? Date.now() },
      config: this.#config,
      clock: this.#clock,
      broadcast: (msg, done) => {
        this.#gossip.broadcast(msg, done);
        this.#wakeGossip();
      },
      healthMultiplier: () => this.#awareness.scale(1),
      stalled: () => this.#stalled("a suspicion"),
      accused: (id, from) => {
        this.#o.onAccused?.(id);
        if (from !== this.#o.self.id) void this.#probeAccused(id);
      },
      stale: (m) => {
        // Held dead or suspect at the incarnation it claims alive at: if it is alive, it
        // refutes (push-pull alone can never bring it back).
        const type = m.status === "dead" ? "dead" : "suspect";
        const { id, incarnation: inc } = m;
        this.#send(m.addr, [{ type, id, inc, from: this.#o.self.id }]);
      },
      refuted: () => {
        this.#awareness.apply(REFUTE_AWARENESS_DELTA);
        const inc = this.#state.self.incarnation;
        const bound = inc === MAX_INCARNATION ? ", the bound" : "";
        this.#log.info(`refuted a suspicion of ourselves (incarnation ${inc}${bound})`);
      },
    });
    this.#state.subscribe((e) => {
      this.#log.debug(`member ${e.member.id} ${e.type === "join" ? "joined" : e.reason}`);
      if (e.type === "join") this.#catchUpSoon();
    });
    this.#prober = new Prober({
      self: options.self.id,
      config: this.#config,
      clock: this.#clock,
      awareness: this.#awareness,
      nextSeq: () => ++this.#seq,
      send: (to, msgs) => this.#send(to, msgs),
      helpers: (k, exclude) =>
        pickRandom(this.#others(), k + 1).filter((m) => m.id !== exclude).slice(0, k),
      unanswered: options.onUnanswered,
    });
    this.#pushPull = new PushPull({
      state: this.#state,
      config: this.#config,
      keyed: !!options.key,
      hook: options.pushPull,
      nextSeq: () => ++this.#seq,
      send: (to, msgs) => this.#send(to, msgs),
    });
  }

  /** The config in force. */
  get config(): Readonly<MembershipConfig> {
    return this.#config;
  }

  /** Ourselves, with our current incarnation and state. */
  get self(): Member {
    return this.#state.self;
  }

  /**
   * Bind the socket (unless a transport was given) and start probing and gossiping.
   *
   * @throws {CircuitError} `busy` when the port is taken; `closed` after `stop()`
   */
  async start(): Promise<void> {
    if (this.#stopped || this.#running) {
      throw new CircuitError("closed", "Starting membership failed: it was started before");
    }
    this.#transport = this.#o.transport ??
      await UdpTransport.bind(this.#o.self.addr, { admit: this.#o.admit });
    if (this.#o.self.addr.port === 0) this.#state.bound(this.#transport.addr);
    this.#gossip.attach(this.#transport, (msg, from) => this.#handle(msg, from));
    this.#running = true;
    this.#gossip.broadcast(this.#state.selfAlive);
    this.#after(0, () => this.#probeTick());
    this.#wakeGossip();
    if (this.#config.pushPullIntervalMs > 0) {
      this.#after(this.#config.pushPullIntervalMs, () => this.#pushPullTick());
    }
  }

  /**
   * Join a cluster: exchange full state with each seed (in parallel).
   *
   * @param seeds membership addresses of some members
   * @param options `timeoutMs` per seed (default `syncTimeoutMs`), `signal`
   * @returns how many seeds answered
   * @throws {CircuitError} `unreachable` when none answered; `aborted`; `closed`
   */
  async join(
    seeds: readonly Addr[],
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<number> {
    this.#assertRunning("Joining the cluster");
    const mine = addrKey(this.#transport!.addr);
    return await this.#pushPull.join(seeds.filter((a) => addrKey(a) !== mine), options);
  }

  /**
   * Leave on purpose: send `left` to every member, gossip it, and wait until it has been
   * gossiped enough or `leaveTimeoutMs` passed. Call {@linkcode Memberlist.stop} afterwards.
   *
   * @param options `signal` to stop waiting early
   */
  async leave(options: { signal?: AbortSignal } = {}): Promise<void> {
    if (!this.#running || this.#state.leaving) return;
    const sent = new Promise<void>((resolve) => this.#state.leaveSelf(resolve));
    const others = this.#others();
    if (others.length === 0) return;
    // Leaving is rare and matters: tell everyone directly as well as through gossip.
    const { id, incarnation: inc } = this.#state.self;
    this.#tellEveryone({ type: "left", id, inc });
    await waitFor(sent, this.#config.leaveTimeoutMs, options.signal, "Leaving").catch(() => {});
  }

  /**
   * The members: alive and suspect ones, ourselves included unless we left.
   *
   * @returns the members, sorted by id
   */
  members(): Member[] {
    return this.#state.list();
  }

  /**
   * Look a member up in any state (dead and left ones until they are reaped).
   *
   * @param id member id
   * @returns the member, or undefined
   */
  member(id: string): Member | undefined {
    return this.#state.get(id);
  }

  /**
   * Listen for joins and leaves. A throwing listener is logged, never breaks the table.
   *
   * @param fn called for each event, in order
   * @returns a function that stops listening
   */
  subscribe(fn: (e: MemberEvent) => void): () => void {
    return this.#state.subscribe((e) => {
      try {
        fn(e);
      } catch (err) {
        this.#log.error(`membership listener failed: ${(err as Error).message}`);
      }
    });
  }

  /**
   * Serve a peer's push-pull that came over the hook's channel: merge, answer with ours.
   * Malformed records are left out.
   *
   * @param remote the peer's state as it arrived (`MemberRecord[]`)
   * @param from who sent it (for suspicion bookkeeping)
   * @returns our state
   */
  handleSync(remote: unknown, from = "push-pull"): MemberRecord[] {
    return this.#pushPull.handleRemote(remote, from);
  }

  /**
   * Our full state, for a push-pull the caller carries itself (say, when joining through
   * a connection it dialed); the peer answers with {@linkcode Memberlist.handleSync}.
   *
   * @returns every member we remember, in any state
   */
  state(): MemberRecord[] {
    return stateRecords(this.#state);
  }

  /**
   * Merge a peer's answer to a push-pull the caller carried. Malformed records are left
   * out.
   *
   * @param remote the peer's state as it arrived (`MemberRecord[]`)
   * @param from who sent it (for suspicion bookkeeping)
   */
  merge(remote: unknown, from: string): void {
    if (this.#running) mergeRemoteState(this.#state, checkRecords(remote), from);
  }

  /**
   * Direct evidence that a member's process is gone (its port refuses connections, or a
   * newer process answers there): declare it dead now, tell every member directly and
   * gossip it, instead of waiting for probes and suspicion. Like a leave, this is rare and
   * matters: through gossip alone about one `kill -9` in twenty reached some member only
   * after a second or more. If it was wrong the member refutes, as with any accusation.
   *
   * @param id member id
   * @returns whether it was a member and is now dead
   */
  failed(id: string): boolean {
    const m = this.#state.get(id);
    if (!this.#running || !m || id === this.#o.self.id) return false;
    if (m.status !== "alive" && m.status !== "suspect") return false;
    const dead = { type: "dead", id, inc: m.incarnation, from: this.#o.self.id } as const;
    this.#state.deadNode(dead);
    if (this.#state.get(id)?.status !== "dead") return false;
    this.#tellEveryone(dead);
    return true;
  }

  /** Send news straight to every other member, besides gossiping it. */
  #tellEveryone(msg: Message): void {
    for (const m of this.#others()) this.#gossip.send(m.addr, [msg], false);
  }

  /**
   * Indirect evidence that a member is unreachable (a connection to it went silent):
   * suspect it, exactly as a failed probe would; probes by others confirm or it refutes.
   *
   * @param id member id
   */
  suspect(id: string): void {
    const m = this.#state.get(id);
    if (!this.#running || !m || id === this.#o.self.id || m.status !== "alive") return;
    this.#state.suspectNode({ type: "suspect", id, inc: m.incarnation, from: this.#o.self.id });
  }

  /**
   * Counters and queue depths, for `stk`.
   *
   * @returns a snapshot
   */
  stats(): MembershipStats {
    const members: Record<MemberStatus, number> = { alive: 0, suspect: 0, dead: 0, left: 0 };
    for (const m of this.#state.list(["alive", "suspect", "dead", "left"])) members[m.status]++;
    return {
      members,
      incarnation: this.#state.self.incarnation,
      awareness: this.#awareness.score,
      refutations: this.#state.refutations,
      queue: this.#gossip.queueStats(),
      probes: { ...this.#prober.stats },
      packets: this.#gossip.packetStats(),
      syncs: { ...this.#pushPull.stats },
      gossipRounds: this.#gossipRounds,
      stalls: this.#stalls,
    };
  }

  /** Stop every loop and timer and close the transport, without announcing anything. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#running = false;
    for (const t of this.#timers) this.#clock.clearTimeout(t);
    this.#timers.clear();
    this.#prober.close();
    this.#state.close();
    this.#gossip.detach();
    this.#pushPull.close();
    await this.#transport?.close();
  }

  /** Same as {@linkcode Memberlist.stop}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  #assertRunning(what: string): void {
    if (!this.#running) {
      throw new CircuitError("closed", `${what} failed: membership is not running`);
    }
  }

  /**
   * Live members other than us, as probe targets: the state's cached list, the same array
   * until a member changes (read per tick and per round, it must not cost O(n)).
   */
  #others(): readonly ProbeTarget[] {
    return this.#state.live();
  }

  #after(ms: number, fn: () => void): number | undefined {
    if (!this.#running) return undefined;
    const t = this.#clock.setTimeout(() => {
      this.#timers.delete(t);
      if (this.#running) fn();
    }, ms);
    this.#timers.add(t);
    return t;
  }

  /**
   * Someone else suspects a member: probe it now, out of turn, instead of when our round
   * robin reaches it. A failed probe is our own, independent suspicion, which others count
   * as a confirmation and which shortens their timeouts (Lifeguard); a live member answers
   * and nothing happens. Waiting for the round robin left a silent member (SIGSTOP)
   * undeclared for over 3 s in some trials: the confirmations came late.
   */
  async #probeAccused(id: string): Promise<void> {
    const m = this.#state.get(id);
    if (!this.#running || !m || m.status !== "suspect" || this.#probingAccused.has(id)) return;
    this.#probingAccused.add(id);
    try {
      await this.#probe({ id, addr: m.addr, incarnation: m.incarnation, status: m.status });
    } finally {
      this.#probingAccused.delete(id);
    }
  }

  /** Probe a member; if it fails, suspect it ourselves. */
  async #probe(target: ProbeTarget): Promise<void> {
    const r = await this.#prober.probe(target);
    if (r.outcome !== "failed" || !this.#running) return;
    this.#log.debug(`probe of ${target.id} failed (${r.nacks}/${r.expectedNacks} nacks)`);
    const { id, incarnation: inc } = target;
    this.#state.suspectNode({ type: "suspect", id, inc, from: this.#o.self.id });
  }

  /**
   * A timer of ours fired more than `stallMs` late: we were starved. Slow down (local
   * health worsens by one) rather than trust what the timer would conclude.
   */
  #stalled(what: string): void {
    this.#stalls++;
    this.#awareness.apply(1);
    this.#log.debug(`${what} fired late: starved, awareness ${this.#awareness.score}`);
  }

  async #probeTick(due?: number): Promise<void> {
    const started = this.#clock.now();
    if (due !== undefined && started - due > this.#config.stallMs) this.#stalled("a probe tick");
    const target = this.#order.next(this.#others());
    if (target) await this.#probe(target);
    this.#state.reap();
    const interval = this.#awareness.scale(this.#config.probeIntervalMs);
    const wait = Math.max(0, interval - (this.#clock.now() - started));
    const next = this.#clock.now() + wait;
    this.#after(wait, () => this.#probeTick(next));
  }

  /**
   * Send queued gossip to a few live members. Then tell one member we hold suspect or dead
   * so directly (Lifeguard's buddy system; gossip to the dead): if it is alive it refutes,
   * even when our broadcast of the accusation was lost. The accused get no queued gossip:
   * it would spend retransmits on members that are probably gone.
   */
  #gossipTick(): void {
    this.#gossipTimer = undefined;
    this.#gossipRounds++;
    this.#lastGossipAt = this.#clock.now();
    const others = this.#others();
    this.#gossip.round(pickRandom(others, this.#config.gossipNodes).map((m) => m.addr));
    const accusedMembers = this.#state.accused();
    const [accused] = pickRandom(accusedMembers, 1);
    if (accused) {
      const { id, incarnation: inc, status } = accused;
      const type = status === "dead" ? "dead" : "suspect";
      this.#gossip.send(accused.addr, [{ type, id, inc, from: this.#o.self.id }], false);
    }
    // Idle when there is nothing to say or nobody to tell: the next broadcast wakes the loop.
    if (
      (this.#gossip.depth > 0 && others.length > 0) || accusedMembers.length > 0
    ) {
      this.#wakeGossip();
    }
  }

  /**
   * Arm the gossip loop, or bring an armed round forward. While broadcasts are queued,
   * rounds are `newsIntervalMs` apart, else `gossipIntervalMs`; news that finds the loop
   * asleep goes out at once (after this turn, so what else this turn queues rides along),
   * and news that finds it waiting out a buddy interval goes out a news interval after the
   * last round. Waiting a full interval at every hop made each hop of a join, a death or a
   * refutation cost up to 200 ms, and a burst of joins several intervals. (While a dead
   * member is remembered, 30 s, the loop is never asleep: news queued then waited for the
   * buddy interval, and a `kill -9` reached the last member 200–400 ms after the first.)
   */
  #wakeGossip(): void {
    if (!this.#running) return;
    const now = this.#clock.now();
    const interval = this.#gossip.depth > 0
      ? this.#config.newsIntervalMs
      : this.#config.gossipIntervalMs;
    const due = Math.max(now, this.#lastGossipAt + interval);
    if (this.#gossipTimer !== undefined) {
      if (this.#gossipDue <= due) return;
      this.#clock.clearTimeout(this.#gossipTimer);
      this.#timers.delete(this.#gossipTimer);
    }
    this.#gossipDue = due;
    this.#gossipTimer = this.#after(due - now, () => this.#gossipTick());
  }

  /** One push-pull `pushPullAfterJoinMs` from now, unless one is already due. */
  #catchUpSoon(): void {
    const ms = this.#config.pushPullAfterJoinMs;
    if (ms <= 0 || this.#catchUpArmed || !this.#running) return;
    this.#catchUpArmed = true;
    this.#after(ms, () => {
      this.#catchUpArmed = false;
      this.#pushPullRandom();
    });
  }

  /** Exchange full state with one random live member, if there is one. */
  #pushPullRandom(): void {
    const [peer] = pickRandom(this.#others(), 1);
    if (!peer) return;
    this.#pushPull.exchange(peer.addr).catch((err) =>
      this.#log.debug(`push-pull with ${peer.id} failed: ${err.message}`)
    );
  }

  #pushPullTick(): void {
    this.#pushPullRandom();
    const n = this.#state.liveCount();
    this.#after(pushPullIntervalMs(this.#config.pushPullIntervalMs, n), () => this.#pushPullTick());
  }

  #send(to: Addr, messages: Message[]): void {
    if (this.#running) this.#gossip.send(to, messages);
  }

  /** One handler per message kind: `suspect` → `suspectNode`, `ping` → `handlePing`, … */
  #handle(msg: Message, from: Addr): void {
    switch (msg.type) {
      case "ping":
        return this.#prober.handlePing(msg, from);
      case "indirectPing":
        return this.#prober.handleIndirectPing(msg, from);
      case "ack":
        return this.#prober.handleAck(msg);
      case "nack":
        return this.#prober.handleNack(msg);
      case "alive":
        return this.#state.aliveNode(msg);
      case "suspect":
        return this.#state.suspectNode(msg);
      case "dead":
        return this.#state.deadNode(msg);
      case "left":
        return this.#state.leftNode(msg);
      case "sync":
        return this.#pushPull.handleSync(msg, from);
    }
  }
}
