/**
 * Push-pull: a full-state exchange with one member, at join and periodically, so the
 * cluster converges even when gossip was lost. Over UDP the state travels as `sync`
 * chunks that each fit in one packet; the first chunk of a request asks the peer to
 * answer with its own state. A server may carry the exchange over its own connections
 * instead (a {@linkcode PushPullHook}).
 *
 * @module
 */

import { CircuitError } from "../errors.ts";
import type { MembershipConfig } from "./config.ts";
import { waitFor } from "./_wait.ts";
import {
  type Addr,
  addrKey,
  checkRecords,
  encodeMessage,
  type MemberRecord,
  type Message,
  type Sync,
} from "./messages.ts";
import type { MemberStates } from "./state.ts";
import { messageCost, packetBudget } from "./transport.ts";

/** Cluster size above which periodic push-pull slows down. */
const PUSH_PULL_SCALE_THRESHOLD = 32;

/**
 * Carries a push-pull over another channel (say, the server's own connections): send
 * our state to the member at `peer` and resolve with its state as it arrived (it is
 * checked here). The peer answers by calling `Memberlist.handleSync`. The signal aborts
 * when the exchange times out.
 */
export type PushPullHook = (
  peer: Addr,
  local: MemberRecord[],
  options: { signal: AbortSignal },
) => Promise<unknown>;

/**
 * Time between periodic push-pulls: `baseMs` up to 32 members, then
 * `baseMs × (ceil(log2(n) − log2(32)) + 1)`, so the total exchange rate grows slowly.
 *
 * @param baseMs `pushPullIntervalMs`
 * @param n live members
 * @returns the interval in ms
 */
export function pushPullIntervalMs(baseMs: number, n: number): number {
  if (n <= PUSH_PULL_SCALE_THRESHOLD) return baseMs;
  const mult = Math.ceil(Math.log2(n) - Math.log2(PUSH_PULL_SCALE_THRESHOLD)) + 1;
  return baseMs * mult;
}

/**
 * Split a full state into `sync` messages that each fit in a packet's message budget.
 * In a request only the first chunk asks for a reply, so the peer answers once; an
 * answer asks for nothing. A record too large for any packet is left out (the hook
 * carries any size).
 *
 * @param records the state
 * @param options sequence number, whether this is an answer, the budget in bytes
 * @returns at least one message (an empty state is still an exchange)
 */
export function syncChunks(
  records: readonly MemberRecord[],
  options: { seq: number; answer: boolean; budgetBytes: number },
): Sync[] {
  const chunks: Sync[] = [];
  const make = (): Sync => ({
    type: "sync",
    seq: options.seq,
    reply: !options.answer && chunks.length === 0,
    answer: options.answer,
    records: [],
  });
  const fits = (c: Sync) => messageCost(encodeMessage(c)) <= options.budgetBytes;
  let chunk = make();
  for (const r of records) {
    chunk.records.push(r);
    if (fits(chunk)) continue;
    chunk.records.pop();
    if (chunk.records.length === 0) continue;
    chunks.push(chunk);
    chunk = make();
    chunk.records.push(r);
    if (!fits(chunk)) chunk.records.pop();
  }
  if (chunk.records.length > 0 || chunks.length === 0) chunks.push(chunk);
  return chunks;
}

/**
 * Our full state: every member we remember, ourselves and dead and left ones included,
 * so a peer learns departures too.
 *
 * @param state our member states
 * @returns one record per member
 */
export function stateRecords(state: MemberStates): MemberRecord[] {
  return state.list(["alive", "suspect", "dead", "left"]).map((m) => ({
    id: m.id,
    url: m.url,
    addr: m.addr,
    inc: m.incarnation,
    start: m.start,
    status: m.status,
  }));
}

/**
 * Merge a peer's full state. A peer's `dead` is taken as a suspicion only (its view may
 * be old, and a live member gets the chance to refute); a suspect we never heard of is
 * first taken in as alive.
 *
 * @param state our member states
 * @param records the peer's members
 * @param from the peer, as the accuser of what it suspects
 */
export function mergeRemoteState(
  state: MemberStates,
  records: readonly MemberRecord[],
  from: string,
): void {
  for (const r of records) {
    const { id, inc } = r;
    if (r.status === "alive" || (r.status === "suspect" && !state.get(id))) {
      state.aliveNode({ type: "alive", id, url: r.url, addr: r.addr, inc, start: r.start });
    }
    if (r.status === "suspect" || r.status === "dead") {
      state.suspectNode({ type: "suspect", id, inc, from });
    }
    if (r.status === "left") state.leftNode({ type: "left", id, inc });
  }
}

/** What a {@linkcode PushPull} needs. */
export interface PushPullOptions {
  /** Our member states. */
  state: MemberStates;
  /** Sync timeout and packet bound. */
  config: MembershipConfig;
  /** Whether packets carry a MAC (it takes room). */
  keyed: boolean;
  /** The exchange over another channel, instead of UDP chunks. */
  hook?: PushPullHook;
  /** A fresh sequence number. */
  nextSeq(): number;
  /** Send messages in one packet. */
  send(to: Addr, messages: Message[]): void;
}

/** Push-pull counters for `stk`. */
export interface PushPullStats {
  /** Exchanges we started. */
  sent: number;
  /** Exchanges we answered. */
  received: number;
  /** Exchanges we started that got no answer in time. */
  failed: number;
}

/** Runs push-pull exchanges and answers the peers' ones. */
export class PushPull {
  #o: PushPullOptions;
  #waiters = new Map<number, () => void>();
  #closed = false;
  /** Counters. */
  readonly stats: PushPullStats = { sent: 0, received: 0, failed: 0 };

  /**
   * Make the exchanger; it does nothing until asked or handed a chunk.
   *
   * @param options state, config, hook, send
   */
  constructor(options: PushPullOptions) {
    this.#o = options;
  }

  /**
   * Exchange full state with the member at `peer`.
   *
   * @param peer its membership address
   * @param options `timeoutMs` (default `syncTimeoutMs`), `signal`
   * @throws {CircuitError} `timeout` without an answer, `aborted`, `closed`; hook errors
   */
  async exchange(
    peer: Addr,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<void> {
    const timeoutMs = options.timeoutMs ?? this.#o.config.syncTimeoutMs;
    const what = `Exchanging state with "${addrKey(peer)}"`;
    this.stats.sent++;
    try {
      if (this.#o.hook) {
        const ctl = new AbortController();
        const local = stateRecords(this.#o.state);
        try {
          const remote = this.#o.hook(peer, local, { signal: ctl.signal });
          const records = await waitFor(remote, timeoutMs, options.signal, what);
          if (!this.#closed) {
            mergeRemoteState(this.#o.state, checkRecords(records), addrKey(peer));
          }
        } finally {
          ctl.abort();
        }
        return;
      }
      const seq = this.#o.nextSeq();
      const answered = new Promise<void>((resolve) => this.#waiters.set(seq, resolve));
      try {
        for (const chunk of this.#chunks(seq, false)) this.#o.send(peer, [chunk]);
        await waitFor(answered, timeoutMs, options.signal, what);
        if (this.#closed) throw new CircuitError("closed", `${what} failed: membership stopped`);
      } finally {
        this.#waiters.delete(seq);
      }
    } catch (err) {
      this.stats.failed++;
      throw err;
    }
  }

  /**
   * Join a cluster: exchange state with every seed in parallel; one answer is enough.
   *
   * @param seeds membership addresses of some members (not ours)
   * @param options `timeoutMs` per seed, `signal`
   * @returns how many seeds answered
   * @throws {CircuitError} `unreachable` when none answered; `aborted`
   */
  async join(
    seeds: readonly Addr[],
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<number> {
    const results = await Promise.allSettled(seeds.map((a) => this.exchange(a, options)));
    const answered = results.filter((r) => r.status === "fulfilled").length;
    if (seeds.length === 0 || answered > 0) return answered;
    const why = (results[0] as PromiseRejectedResult).reason;
    if (why instanceof CircuitError && why.code === "aborted") throw why;
    throw new CircuitError(
      "unreachable",
      `Joining the cluster failed: no seed answered, tried "${seeds.map(addrKey).join(", ")}"`,
      { cause: why },
    );
  }

  /**
   * A `sync` chunk arrived: merge it, wake the exchange it answers, or answer the
   * request it starts.
   *
   * @param msg the chunk
   * @param from its sender
   */
  handleSync(msg: Sync, from: Addr): void {
    mergeRemoteState(this.#o.state, msg.records, addrKey(from));
    if (msg.answer) this.#waiters.get(msg.seq)?.();
    if (!msg.reply) return;
    this.stats.received++;
    for (const chunk of this.#chunks(msg.seq, true)) this.#o.send(from, [chunk]);
  }

  /**
   * A peer's exchange that came over the hook's channel: merge, answer with ours.
   * Malformed records are left out.
   *
   * @param remote its state as it arrived
   * @param from who sent it
   * @returns our state
   */
  handleRemote(remote: unknown, from: string): MemberRecord[] {
    this.stats.received++;
    mergeRemoteState(this.#o.state, checkRecords(remote), from);
    return stateRecords(this.#o.state);
  }

  /** Stop: waiting exchanges fail as `closed`. */
  close(): void {
    this.#closed = true;
    for (const wake of this.#waiters.values()) wake();
    this.#waiters.clear();
  }

  #chunks(seq: number, answer: boolean): Sync[] {
    const budgetBytes = packetBudget(this.#o.config.maxPacketBytes, this.#o.keyed);
    return syncChunks(stateRecords(this.#o.state), { seq, answer, budgetBytes });
  }
}
