/**
 * The probe cycle of SWIM with Lifeguard's refinements. Each probe interval one member,
 * taken in a shuffled round-robin order, gets a direct `ping`. Without an `ack` within the
 * probe timeout, `indirectChecks` random members are asked to ping it for us
 * (`indirectPing`); they forward its ack, or send a `nack` when they heard nothing, which
 * tells us that we at least can talk to them. No ack by the end of the interval means the
 * probe failed, and the caller suspects the member.
 *
 * Interval and timeout are scaled by the local health {@linkcode Awareness}, which each
 * probe updates. Timers come from a {@linkcode Clock} and packets go through a `send`
 * callback, so tests drive the whole cycle without sockets or real time.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import { shuffle } from "./_random.ts";
import { type Awareness, probeAwarenessDelta } from "./awareness.ts";
import type { MembershipConfig } from "./config.ts";
import type { Ack, Addr, IndirectPing, MemberStatus, Message, Nack, Ping } from "./messages.ts";

/** A member as the prober needs it. */
export interface ProbeTarget {
  /** Member id. */
  id: string;
  /** Its membership address. */
  addr: Addr;
  /** Its incarnation when the probe started. */
  incarnation: number;
  /** Its state: a suspect is also told it is suspected, so it can refute. */
  status: MemberStatus;
}

/** How a probe ended. */
export type ProbeOutcome = "acked" | "indirectAcked" | "failed" | "stalled" | "cancelled";

/** The result of one probe. */
export interface ProbeResult {
  /**
   * How it ended; `failed` means the caller should suspect the target. `stalled`: no ack,
   * but a wait of ours ended more than `stallMs` late, so the ack may be sitting unread in
   * our socket; nobody is suspected and our local health worsens.
   */
  outcome: ProbeOutcome;
  /** Helpers asked to ping the target. */
  expectedNacks: number;
  /** Nacks they sent. */
  nacks: number;
}

/** What the prober needs from the member list. */
export interface ProberOptions {
  /** Our id (pings for another id are not ours to answer). */
  self: string;
  /** Probe interval and timeout, indirect checks. */
  config: Pick<
    MembershipConfig,
    "probeIntervalMs" | "probeTimeoutMs" | "indirectChecks" | "stallMs"
  >;
  /** The timers. */
  clock: Clock;
  /** Local health; scales interval and timeout, updated after each probe. */
  awareness: Awareness;
  /** A fresh sequence number. */
  nextSeq(): number;
  /** Send messages in one packet (gossip may be piggybacked). */
  send(to: Addr, messages: Message[]): void;
  /** Up to `k` random live members other than us and `exclude`. */
  helpers(k: number, exclude: string): ProbeTarget[];
  /**
   * Told when a member missed its direct ack, as the indirect pings go out: a hook for
   * other evidence (the server redials the member's TCP port if no connection is open).
   */
  unanswered?(id: string): void;
}

/** Probe counters for `stk`. */
export interface ProbeStats {
  /** Probes started. */
  probes: number;
  /** Acked directly. */
  acked: number;
  /** Acked through a helper. */
  indirectAcked: number;
  /** Failed (the target was suspected). */
  failed: number;
  /** Inconclusive because we were starved (a wait ended more than `stallMs` late). */
  stalled: number;
  /** Indirect pings we ran for others. */
  relayed: number;
}

interface Pending {
  acked: boolean;
  nacks: number;
  wake?: () => void;
  onAck?: () => void;
}

/** Runs probes and answers pings, acks, nacks and indirect pings. */
export class Prober {
  #o: ProberOptions;
  #pending = new Map<number, Pending>();
  #wakers = new Set<() => void>();
  #timers = new Set<number>();
  #closed = false;
  /** Counters. */
  readonly stats: ProbeStats = {
    probes: 0,
    acked: 0,
    indirectAcked: 0,
    failed: 0,
    stalled: 0,
    relayed: 0,
  };

  /**
   * Make a prober; it does nothing until asked to probe or handed a message.
   *
   * @param options config, clock, awareness, send
   */
  constructor(options: ProberOptions) {
    this.#o = options;
  }

  /**
   * Probe one member: ping, then ping-req through helpers, within one scaled interval.
   *
   * @param target the member
   * @returns how it went; awareness is already updated
   */
  async probe(target: ProbeTarget): Promise<ProbeResult> {
    const { clock, config, awareness } = this.#o;
    const result: ProbeResult = { outcome: "cancelled", expectedNacks: 0, nacks: 0 };
    if (this.#closed) return result;
    this.stats.probes++;
    const seq = this.#o.nextSeq();
    const entry: Pending = { acked: false, nacks: 0 };
    this.#pending.set(seq, entry);
    const start = clock.now();
    const intervalMs = awareness.scale(config.probeIntervalMs);
    try {
      const ping: Ping = { type: "ping", seq, id: target.id };
      // A suspect is told first (Lifeguard's buddy system), so that the ack to the ping
      // already carries its refutation.
      this.#o.send(
        target.addr,
        target.status === "suspect"
          ? [{ type: "suspect", id: target.id, inc: target.incarnation, from: this.#o.self }, ping]
          : [ping],
      );
      let stalled = await this.#wait(entry, awareness.scale(config.probeTimeoutMs));
      if (this.#closed) return result;
      if (!entry.acked) {
        this.#o.unanswered?.(target.id);
        const helpers = this.#o.helpers(config.indirectChecks, target.id);
        result.expectedNacks = helpers.length;
        const req: IndirectPing = {
          type: "indirectPing",
          seq,
          id: target.id,
          addr: target.addr,
          nack: true,
        };
        for (const h of helpers) this.#o.send(h.addr, [req]);
        stalled = await this.#wait(entry, intervalMs - (clock.now() - start)) || stalled;
        if (this.#closed) return result;
        result.outcome = entry.acked ? "indirectAcked" : stalled ? "stalled" : "failed";
      } else {
        result.outcome = "acked";
      }
      result.nacks = entry.nacks;
      awareness.apply(
        result.outcome === "stalled" ? 1 : probeAwarenessDelta({ acked: entry.acked, ...result }),
      );
      this.stats[result.outcome as "acked" | "indirectAcked" | "failed" | "stalled"]++;
      return result;
    } finally {
      this.#pending.delete(seq);
    }
  }

  /**
   * A ping: ack it when it is for us (a restarted member at the same address is not).
   *
   * @param ping the ping
   * @param from its sender
   */
  handlePing(ping: Ping, from: Addr): void {
    if (ping.id !== this.#o.self || this.#closed) return;
    this.#o.send(from, [{ type: "ack", seq: ping.seq }]);
  }

  /**
   * An ack: end the probe (or the relay) it answers.
   *
   * @param ack an ack for one of our pings (direct or forwarded)
   */
  handleAck(ack: Ack): void {
    const entry = this.#pending.get(ack.seq);
    if (!entry || entry.acked) return;
    entry.acked = true;
    entry.onAck?.();
    entry.wake?.();
  }

  /**
   * A nack: count it for the probe's awareness update.
   *
   * @param nack a helper's report that the target stayed silent
   */
  handleNack(nack: Nack): void {
    const entry = this.#pending.get(nack.seq);
    if (entry) entry.nacks++;
  }

  /**
   * Ping a member for someone else; forward its ack, or nack after 80 % of our probe
   * timeout when asked to.
   *
   * @param req the request
   * @param from the requester
   */
  handleIndirectPing(req: IndirectPing, from: Addr): void {
    if (this.#closed) return;
    const { clock, config } = this.#o;
    this.stats.relayed++;
    const seq = this.#o.nextSeq();
    const timers: number[] = [];
    const end = () => {
      for (const t of timers) {
        clock.clearTimeout(t);
        this.#timers.delete(t);
      }
      this.#pending.delete(seq);
    };
    const after = (ms: number, fn: () => void) => {
      const t = clock.setTimeout(() => {
        this.#timers.delete(t);
        fn();
      }, ms);
      this.#timers.add(t);
      timers.push(t);
    };
    const entry: Pending = {
      acked: false,
      nacks: 0,
      onAck: () => {
        this.#o.send(from, [{ type: "ack", seq: req.seq }]);
        end();
      },
    };
    this.#pending.set(seq, entry);
    this.#o.send(req.addr, [{ type: "ping", seq, id: req.id }]);
    if (req.nack) {
      after(Math.floor(config.probeTimeoutMs * 0.8), () => {
        if (!entry.acked) this.#o.send(from, [{ type: "nack", seq: req.seq }]);
      });
    }
    after(config.probeTimeoutMs, end);
  }

  /** Stop: running probes end as `cancelled`, relays are dropped. */
  close(): void {
    this.#closed = true;
    for (const wake of [...this.#wakers]) wake();
    for (const t of this.#timers) this.#o.clock.clearTimeout(t);
    this.#timers.clear();
    this.#pending.clear();
  }

  /**
   * Wait until the entry is acked, `ms` pass, or the prober closes.
   *
   * @returns whether the wait ended by its timer more than `stallMs` late (we were
   *   starved, and an answer may be waiting unread)
   */
  #wait(entry: Pending, ms: number): Promise<boolean> {
    if (entry.acked || this.#closed || ms <= 0) return Promise.resolve(false);
    const { clock, config } = this.#o;
    const due = clock.now() + ms;
    return new Promise<boolean>((resolve) => {
      const done = (late = false) => {
        clock.clearTimeout(timer);
        this.#wakers.delete(wake);
        entry.wake = undefined;
        resolve(late);
      };
      const wake = () => done();
      const timer = clock.setTimeout(() => done(clock.now() - due > config.stallMs), ms);
      this.#wakers.add(wake);
      entry.wake = wake;
    });
  }
}

/**
 * The probe order: every live member once per round, in a fresh random order each round,
 * so each member is probed within two rounds at worst (SWIM's round-robin variant).
 */
export class ProbeOrder {
  #order: string[] = [];
  #live: readonly { id: string }[] | undefined;
  #byId = new Map<string, { id: string }>();
  #index = 0;
  #random: () => number;

  /**
   * Start with an empty round.
   *
   * @param random a number in [0, 1)
   */
  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  /**
   * The next member to probe.
   *
   * @param live the members that may be probed now (not ourselves); the same array is
   *   taken to hold the same members (it is indexed once per array)
   * @returns the next one, or undefined when there is nobody
   */
  next<T extends { id: string }>(live: readonly T[]): T | undefined {
    // The member list hands the same array until a member changes: index it once.
    if (live !== this.#live) [this.#live, this.#byId] = [live, new Map(live.map((m) => [m.id, m]))];
    const byId = this.#byId as Map<string, T>;
    for (let pass = 0; pass < 2; pass++) {
      while (this.#index < this.#order.length) {
        const m = byId.get(this.#order[this.#index++]);
        if (m) return m;
      }
      this.#order = shuffle([...byId.keys()], this.#random);
      this.#index = 0;
    }
    return undefined;
  }
}
