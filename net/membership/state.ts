/**
 * Member states and the rules that move between them. Each incoming fact has one
 * function named for it (`alive` → `aliveNode`, `suspect` → `suspectNode`, `dead` →
 * `deadNode`, `left` → `leftNode`) that reads as guard clauses, then the change, then the
 * notification. Nothing here awaits: a transition reads and writes state in one step and
 * hands the I/O (the rebroadcast) to a callback.
 *
 * The rules, after hashicorp/memberlist `state.go`:
 * - A higher incarnation wins; news at or below the known incarnation is stale. Stale news
 *   never revives a dead or left member (only the member itself raises its incarnation).
 *   A stale `dead` is still an accusation: it confirms or starts a suspicion at the known
 *   incarnation (memberlist drops it; here a member that saw a port refuse may have
 *   missed a refutation, and would otherwise leave others suspecting for the longest
 *   timeout).
 * - Suspicion or death of ourselves is refuted by raising our incarnation above it.
 * - Incarnations are bounded by `MAX_INCARNATION` (messages above it are malformed). A
 *   refutation never goes past the bound, and at the bound an `alive` beats a suspicion,
 *   death or leave at the bound: otherwise one forged accusation at the bound would keep a
 *   live member out for good (it could never refute). A member that really failed at the
 *   bound is still declared dead: nothing alive answers for it.
 * - A suspicion turns into death after a Lifeguard timeout that confirmations shorten,
 *   scaled by our local health multiplier (an unhealthy node is slow to accuse).
 * - An address belongs to the process that started last: in circuit a restart has a new
 *   id, so a new id at a known address is accepted at once and the old id there is marked
 *   dead, and news about an older process at that address is ignored.
 * - Dead and left members are remembered for `deadReapMs`, then reaped.
 * - Events alternate per member: `join` when it becomes a member, `leave` once when it
 *   stops being one (dead or left). Only a refutation with a higher incarnation can make
 *   a departed member join again.
 *
 * @module
 */

import type { Clock } from "./_clock.ts";
import type { MembershipConfig } from "./config.ts";
import {
  type Addr,
  addrKey,
  type Alive,
  type Broadcast,
  type Dead,
  type Left,
  MAX_INCARNATION,
  type MemberStatus,
  type Suspect,
} from "./messages.ts";
import { Suspicions } from "./suspicion.ts";

/** A member as this node sees it. */
export interface Member {
  /** Member id. */
  id: string;
  /** Its circuit URL. */
  url: string;
  /** Its membership (UDP) address. */
  addr: Addr;
  /** The highest incarnation we know of. */
  incarnation: number;
  /** Its state. */
  status: MemberStatus;
  /** Its process start, ms since the epoch. */
  start: number;
  /** When its state last changed, by our clock (ms). */
  changedAtMs: number;
}

/** A membership change: alternates `join`, `leave`, … per member. */
export type MemberEvent =
  | { type: "join"; member: Member }
  | { type: "leave"; member: Member; reason: "left" | "failed" };

/** Who we are and what state transitions need. */
export interface MemberStatesOptions {
  /** Ourselves. */
  self: { id: string; url: string; addr: Addr; start: number };
  /** Suspicion multipliers, probe interval and reap time. */
  config: MembershipConfig;
  /** The timers. */
  clock: Clock;
  /** Queue gossip about a member; `done` when it has been sent often enough. */
  broadcast(msg: Broadcast, done?: () => void): void;
  /** We refuted a suspicion of ourselves (raises awareness). */
  refuted?(): void;
  /** Our local health multiplier, which scales suspicion timeouts. @default {() => 1} */
  healthMultiplier?(): number;
  /**
   * A suspicion's timer fired more than `stallMs` late (we were starved); it was re-armed
   * instead of declaring the member dead.
   */
  stalled?(): void;
  /**
   * A live member was accused here: it became suspect, or someone claimed it dead at an
   * older incarnation than ours (taken as a suspicion). A caller with other evidence (a
   * refused port) can settle it at once.
   */
  accused?(id: string, from: string): void;
}

const isMember = (m: Member) => m.status === "alive" || m.status === "suspect";
/**
 * Whether an `alive` at `inc` is old news for `m`: below its incarnation, or at it (where
 * an accusation wins), except at the bound, where only an alive member has nothing to learn.
 */
const staleAlive = (m: Member, inc: number) =>
  inc < m.incarnation ||
  (inc === m.incarnation && (inc < MAX_INCARNATION || m.status === "alive"));
/** Whether `a` is a later process than `b` (start time, then id as tie-break). */
const newer = (a: Member | Alive, b: Member | Alive) =>
  a.start > b.start || (a.start === b.start && a.id > b.id);

/** The member table of the SWIM layer, with its transition rules. */
export class MemberStates {
  #o: MemberStatesOptions;
  #self: Member;
  #members = new Map<string, Member>();
  #suspicions: Suspicions;
  #listeners = new Set<(e: MemberEvent) => void>();
  #leaving = false;
  /** Suspicions (or deaths) of ourselves we refuted. */
  refutations = 0;

  /**
   * Make a table that holds only ourselves, alive at incarnation 1.
   *
   * @param options ourselves, config, clock, broadcast
   */
  constructor(options: MemberStatesOptions) {
    this.#o = options;
    this.#suspicions = new Suspicions({
      ...options,
      stallMs: options.config.stallMs,
      onStall: () => options.stalled?.(),
    });
    const { id, url, start } = options.self;
    const [addr, changedAtMs] = [{ ...options.self.addr }, options.clock.now()];
    this.#self = { id, url, addr, start, incarnation: 1, status: "alive", changedAtMs };
    this.#members.set(id, this.#self);
  }

  /** Ourselves. */
  get self(): Member {
    return view(this.#self);
  }

  /** Whether we announced our leave. */
  get leaving(): boolean {
    return this.#leaving;
  }

  /** Our `alive` message at our current incarnation. */
  get selfAlive(): Alive {
    const { id, url, addr, incarnation: inc, start } = this.#self;
    return { type: "alive", id, url, addr: { ...addr }, inc, start };
  }

  /**
   * Record the address our socket actually got (when port 0 was asked for). Only before
   * anything was sent.
   *
   * @param addr the bound address
   */
  bound(addr: Addr): void {
    this.#self.addr = { ...addr };
  }

  /**
   * Look a member up.
   *
   * @param id member id
   * @returns the member in any state, or undefined when unknown or reaped
   */
  get(id: string): Member | undefined {
    const m = this.#members.get(id);
    return m && view(m);
  }

  /**
   * List members by state.
   *
   * @param statuses which states to list
   * @returns matching members (ourselves included), sorted by id
   */
  list(statuses: readonly MemberStatus[] = ["alive", "suspect"]): Member[] {
    return [...this.#members.values()].filter((m) => statuses.includes(m.status)).map(view)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /**
   * Count the live members: the `n` of every formula.
   *
   * @returns alive and suspect members, ourselves included
   */
  liveCount(): number {
    let n = 0;
    for (const m of this.#members.values()) if (isMember(m)) n++;
    return n;
  }

  /**
   * Listen for joins and leaves.
   *
   * @param fn called for each event, in order
   * @returns a function that stops listening
   */
  subscribe(fn: (e: MemberEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /**
   * `alive`: a member is alive at an incarnation.
   *
   * @param a the news
   */
  aliveNode(a: Alive): void {
    const s = this.#self;
    // Guard: about ourselves. Old news is ignored; a newer claim (say, our own alive from
    // before we lost track) is refuted with a still newer incarnation.
    if (a.id === s.id) {
      if (a.inc > s.incarnation && !this.#leaving) this.#refute(a.inc);
      return;
    }
    // Guard: an address belongs to the newest process there; older ones never return.
    const owner = this.#ownerOf(a.addr, a.id);
    if (owner && (owner === s || newer(owner, a))) return;
    const m = this.#members.get(a.id);
    // Guard: stale news never revives or rolls back a member.
    if (m && staleAlive(m, a.inc)) return;
    // Guard: an id never moves (a restart has a new id).
    if (m && addrKey(m.addr) !== addrKey(a.addr)) return;
    // A restarted member replaces its predecessor at once.
    if (owner && isMember(owner)) {
      this.deadNode({ type: "dead", id: owner.id, inc: owner.incarnation, from: s.id });
    }
    const now = this.#o.clock.now();
    const joined = !m || !isMember(m);
    const { id, url, start, inc: incarnation } = a;
    const addr = { ...a.addr };
    const next: Member = m ??
      { id, url, addr, start, incarnation, status: "alive", changedAtMs: now };
    if (next.status !== "alive") next.changedAtMs = now;
    Object.assign(next, { url, start, incarnation, status: "alive" });
    this.#members.set(a.id, next);
    this.#suspicions.end(a.id);
    this.#o.broadcast(a);
    if (joined) this.#emit({ type: "join", member: view(next) });
  }

  /**
   * `suspect`: `from` could not reach a member.
   *
   * @param sus the news
   */
  suspectNode(sus: Suspect): void {
    // Guard: about ourselves.
    if (sus.id === this.#self.id) return this.#accused(sus.inc);
    const m = this.#members.get(sus.id);
    // Guards: unknown member, or news older than what we know.
    if (!m || sus.inc < m.incarnation) return;
    // Already suspect: count an independent confirmation, which shortens the timeout.
    if (m.status === "suspect") {
      if (this.#suspicions.confirm(m.id, sus.from)) this.#o.broadcast(sus);
      return;
    }
    // Guard: dead and left members are past suspicion.
    if (m.status !== "alive") return;
    Object.assign(m, { incarnation: sus.inc, status: "suspect", changedAtMs: this.#o.clock.now() });
    const self = this.#self.id;
    this.#suspicions.start(m.id, {
      from: sus.from,
      n: this.liveCount(),
      onTimeout: () => this.deadNode({ type: "dead", id: m.id, inc: sus.inc, from: self }),
    });
    this.#o.broadcast(sus);
    this.#o.accused?.(m.id, sus.from);
  }

  /**
   * `dead`: a member failed.
   *
   * @param d the news
   */
  deadNode(d: Dead): void {
    // Guard: about ourselves.
    if (d.id === this.#self.id) return this.#accused(d.inc);
    const m = this.#members.get(d.id);
    // Guards: unknown, or already departed.
    if (!m || !isMember(m)) return;
    if (d.inc < m.incarnation) {
      // Older than what we know, so it cannot kill; but a member that saw the process go
      // (its port refused) may simply have missed a refutation. Take it as an accusation
      // at the incarnation we know: a suspicion we hold is confirmed (shortening it), one
      // we do not hold starts; a live member refutes either, as any accusation.
      if (m.status === "suspect") {
        this.#suspicions.confirm(m.id, d.from);
        this.#o.accused?.(m.id, d.from);
      } else this.suspectNode({ type: "suspect", id: m.id, inc: m.incarnation, from: d.from });
      return;
    }
    this.#depart(m, "dead", d.inc);
    this.#o.broadcast(d);
    this.#emit({ type: "leave", member: view(m), reason: "failed" });
  }

  /**
   * `left`: a member left on purpose.
   *
   * @param l the news
   */
  leftNode(l: Left): void {
    // Guard: about ourselves (only we say that we leave).
    if (l.id === this.#self.id) return this.#accused(l.inc);
    const m = this.#members.get(l.id);
    // Guards: unknown, older news, or already recorded as left.
    if (!m || l.inc < m.incarnation || m.status === "left") return;
    const wasMember = isMember(m);
    this.#depart(m, "left", l.inc);
    this.#o.broadcast(l);
    // A member already dead has had its leave event.
    if (wasMember) this.#emit({ type: "leave", member: view(m), reason: "left" });
  }

  /**
   * We leave: record it and broadcast it.
   *
   * @param done called once the announcement has been sent often enough (or replaced)
   */
  leaveSelf(done?: () => void): void {
    this.#leaving = true;
    Object.assign(this.#self, { status: "left", changedAtMs: this.#o.clock.now() });
    this.#o.broadcast({ type: "left", id: this.#self.id, inc: this.#self.incarnation }, done);
  }

  /**
   * Forget dead and left members older than `deadReapMs`.
   *
   * @returns the reaped ids
   */
  reap(): string[] {
    const cutoff = this.#o.clock.now() - this.#o.config.deadReapMs;
    const out: string[] = [];
    for (const m of this.#members.values()) {
      if (m !== this.#self && !isMember(m) && m.changedAtMs <= cutoff) out.push(m.id);
    }
    for (const id of out) this.#members.delete(id);
    return out;
  }

  /** Cancel every suspicion timer. */
  close(): void {
    this.#suspicions.close();
  }

  /**
   * Someone says we are suspect, dead or gone (unless we are leaving, we are not): refute
   * news at our incarnation; repeat our newer alive to whoever spreads older news, so an
   * accuser that missed our refutation hears it (our ack to its ping carries it).
   */
  #accused(inc: number): void {
    if (this.#leaving) return;
    if (inc >= this.#self.incarnation) this.#refute(inc);
    else this.#o.broadcast(this.selfAlive);
  }

  #refute(accused: number): void {
    const next = Math.max(this.#self.incarnation, accused) + 1;
    // At the bound our alive at the bound wins (see staleAlive), so we stay there.
    this.#self.incarnation = Math.min(next, MAX_INCARNATION);
    this.refutations++;
    this.#o.refuted?.();
    this.#o.broadcast(this.selfAlive);
  }

  #depart(m: Member, status: "dead" | "left", inc: number): void {
    Object.assign(m, { status, incarnation: inc, changedAtMs: this.#o.clock.now() });
    this.#suspicions.end(m.id);
  }

  /** The newest other member recorded at an address, in any state. */
  #ownerOf(addr: Addr, except: string): Member | undefined {
    const key = addrKey(addr);
    let owner: Member | undefined;
    for (const m of this.#members.values()) {
      if (m.id !== except && addrKey(m.addr) === key && (!owner || newer(m, owner))) owner = m;
    }
    return owner;
  }

  #emit(e: MemberEvent): void {
    for (const fn of this.#listeners) fn(e);
  }
}

function view(m: Member): Member {
  return { ...m, addr: { ...m.addr } };
}
