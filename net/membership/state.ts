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
 * - An `alive` that cannot revive a member we hold dead or suspect at the same incarnation
 *   (typically a peer's push-pull, or gossip from before the accusation) means the member
 *   may be alive without knowing it is accused: it is told directly (`stale`, at most once
 *   per `probeIntervalMs` per member), so it refutes. Without that, push-pull could never
 *   bring such a member back; only the buddy messages of the gossip loop, to one random
 *   accused member per round, would reach it.
 * - Flap damping: a member that came back from dead within `flapWindowMs` gets
 *   its suspicion timeouts multiplied by `flapSuspicionMult`, so a member falsely
 *   declared dead (one starved, or behind a lossy link) rejoins once, not in a loop.
 *
 * Everything done per packet or per tick is O(1) in the number of members: members are
 * indexed by address, and the live and accused members other than us are kept as cached
 * lists that are rebuilt only when a member changes.
 * - Events alternate per member: `join` when it becomes a member, `leave` once when it
 *   stops being one (dead or left). Only a refutation with a higher incarnation can make
 *   a departed member join again.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
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
  /**
   * An `alive` at the incarnation we hold a member dead or suspect at arrived (it cannot
   * revive it): tell the member so directly, so that, if it is alive, it refutes. Called
   * at most once per `probeIntervalMs` per member.
   */
  stale?(member: Member): void;
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
  /** Members by address key, in any state (a restart leaves two ids at one address). */
  #byAddr = new Map<string, Member[]>();
  /** Dead and left members other than us, to be reaped. */
  #departed = new Set<Member>();
  /** When each member came back from dead (flap damping), by our clock. */
  #returnedAt = new Map<string, number>();
  /** When each held-dead or suspect member was last told so on a stale `alive`. */
  #toldStaleAt = new Map<string, number>();
  /** Cached views, rebuilt on the first read after a change. */
  #cache: { live: readonly Member[]; accused: readonly Member[]; count: number } | undefined;
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
    this.#index(this.#self);
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
    this.#unindex(this.#self);
    this.#self.addr = { ...addr };
    this.#index(this.#self);
    this.#changed();
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
    return this.#views().count;
  }

  /**
   * The live (alive and suspect) members other than us, as probe and gossip targets. The
   * same frozen array is returned until a member changes, so a caller may cache what it
   * derives from it by identity.
   *
   * @returns the members, in no particular order; do not keep them past a change
   */
  live(): readonly Member[] {
    return this.#views().live;
  }

  /**
   * The suspect and dead members other than us (the gossip loop tells them so). Cached as
   * {@linkcode MemberStates.live}.
   *
   * @returns the members, in no particular order
   */
  accused(): readonly Member[] {
    return this.#views().accused;
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
    // Guard: stale news never revives or rolls back a member; but one we hold dead or
    // suspect at this very incarnation is told, so that, if it is alive, it refutes.
    if (m && staleAlive(m, a.inc)) {
      const accused = m.status === "dead" || m.status === "suspect";
      if (a.inc === m.incarnation && accused) this.#tellStale(m);
      return;
    }
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
    // Back from the dead: damp its next suspicions for a while.
    if (m?.status === "dead") this.#returnedAt.set(a.id, now);
    Object.assign(next, { url, start, incarnation, status: "alive" });
    if (!m) {
      this.#members.set(a.id, next);
      this.#index(next);
    }
    this.#departed.delete(next);
    this.#toldStaleAt.delete(a.id);
    this.#changed();
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
    const now = this.#o.clock.now();
    Object.assign(m, { incarnation: sus.inc, status: "suspect", changedAtMs: now });
    this.#changed();
    const self = this.#self.id;
    this.#suspicions.start(m.id, {
      from: sus.from,
      n: this.liveCount(),
      mult: this.#flapping(m.id, now) ? this.#o.config.flapSuspicionMult : 1,
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
    this.#changed();
    this.#o.broadcast({ type: "left", id: this.#self.id, inc: this.#self.incarnation }, done);
  }

  /**
   * Forget dead and left members older than `deadReapMs`.
   *
   * @returns the reaped ids
   */
  reap(): string[] {
    const now = this.#o.clock.now();
    const cutoff = now - this.#o.config.deadReapMs;
    const out: string[] = [];
    for (const m of this.#departed) {
      if (m.changedAtMs > cutoff) continue;
      out.push(m.id);
      this.#departed.delete(m);
      this.#members.delete(m.id);
      this.#unindex(m);
      this.#returnedAt.delete(m.id);
      this.#toldStaleAt.delete(m.id);
    }
    if (out.length > 0) this.#changed();
    // Forget returns older than the damping window (the map stays bounded by the members).
    if (this.#returnedAt.size > 0) {
      const since = now - this.#o.config.flapWindowMs;
      for (const [id, at] of this.#returnedAt) if (at <= since) this.#returnedAt.delete(id);
    }
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
    if (m !== this.#self) this.#departed.add(m);
    this.#changed();
    this.#suspicions.end(m.id);
  }

  /** The newest other member recorded at an address, in any state. */
  #ownerOf(addr: Addr, except: string): Member | undefined {
    let owner: Member | undefined;
    for (const m of this.#byAddr.get(addrKey(addr)) ?? []) {
      if (m.id !== except && (!owner || newer(m, owner))) owner = m;
    }
    return owner;
  }

  #index(m: Member): void {
    const key = addrKey(m.addr);
    const at = this.#byAddr.get(key);
    if (at) at.push(m);
    else this.#byAddr.set(key, [m]);
  }

  #unindex(m: Member): void {
    const key = addrKey(m.addr);
    const at = this.#byAddr.get(key)?.filter((x) => x !== m) ?? [];
    if (at.length > 0) this.#byAddr.set(key, at);
    else this.#byAddr.delete(key);
  }

  /** A member changed: the cached views are rebuilt on the next read. */
  #changed(): void {
    this.#cache = undefined;
  }

  #views(): { live: readonly Member[]; accused: readonly Member[]; count: number } {
    if (this.#cache) return this.#cache;
    const live: Member[] = [], accused: Member[] = [];
    let count = 0;
    for (const m of this.#members.values()) {
      if (isMember(m)) count++;
      if (m === this.#self) continue;
      if (isMember(m)) live.push(frozenView(m));
      if (m.status === "suspect" || m.status === "dead") accused.push(frozenView(m));
    }
    this.#cache = { live: Object.freeze(live), accused: Object.freeze(accused), count };
    return this.#cache;
  }

  /** Whether a member came back from an accusation within `flapWindowMs`. */
  #flapping(id: string, now: number): boolean {
    const at = this.#returnedAt.get(id);
    return at !== undefined && now - at < this.#o.config.flapWindowMs;
  }

  /** Tell a member we hold dead or suspect so, at most once per probe interval. */
  #tellStale(m: Member): void {
    const now = this.#o.clock.now();
    const last = this.#toldStaleAt.get(m.id);
    if (last !== undefined && now - last < this.#o.config.probeIntervalMs) return;
    this.#toldStaleAt.set(m.id, now);
    this.#o.stale?.(view(m));
  }

  #emit(e: MemberEvent): void {
    for (const fn of this.#listeners) fn(e);
  }
}

function view(m: Member): Member {
  return { ...m, addr: { ...m.addr } };
}

function frozenView(m: Member): Member {
  return Object.freeze({ ...m, addr: Object.freeze({ ...m.addr }) });
}
