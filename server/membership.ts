/**
 * The member table: who is in the cluster, with join and leave events. This is the one
 * interface the rest of the server uses (`ls /`, routing, `@join` and `@leave`); the SWIM
 * layer (`net/membership/`) feeds it through `admit` and `remove`.
 *
 * @module
 */

import type { MemberInfo } from "../net/wire.ts";

/** A membership change. */
export interface MembershipEvent {
  /** Joined or left (gracefully or by failure). */
  type: "join" | "leave";
  /** The member. */
  member: MemberInfo;
  /** Why it left: `left` (announced) or `failed` (detected). */
  reason?: "left" | "failed";
}

/** How long a departed id is remembered so stale gossip cannot revive it, in ms. */
export const TOMBSTONE_MS = 10 * 60 * 1000;

/** Live members, tombstones for departed ones, and listeners for changes. */
export class MemberTable {
  #self: MemberInfo;
  #members = new Map<string, MemberInfo>();
  #gone = new Map<string, number>();
  #listeners = new Set<(e: MembershipEvent) => void>();

  /** @param self this server */
  constructor(self: MemberInfo) {
    this.#self = self;
    this.#members.set(self.id, self);
  }

  /** This server. */
  get self(): MemberInfo {
    return this.#self;
  }

  /**
   * Every live member, this server included, sorted by id.
   *
   * @returns the members
   */
  list(): MemberInfo[] {
    return [...this.#members.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /**
   * Ids that left or failed recently.
   *
   * @returns the ids
   */
  gone(): string[] {
    this.#expire();
    return [...this.#gone.keys()];
  }

  /**
   * Look a member up.
   *
   * @param id server id
   * @returns the member, or undefined
   */
  get(id: string): MemberInfo | undefined {
    return this.#members.get(id);
  }

  /**
   * Add a member unless it is known or departed.
   *
   * @param m the member
   * @returns whether it was added (and a join event sent)
   */
  add(m: MemberInfo): boolean {
    // Guard: known, departed, or ourselves.
    if (this.#members.has(m.id) || this.#gone.has(m.id)) return false;
    this.#members.set(m.id, m);
    this.#emit({ type: "join", member: m });
    return true;
  }

  /**
   * Add a member on direct evidence that it is alive (it connected to us, or we dialed
   * it), even if it was recorded as departed: after a partition heals, each side hears
   * from the other itself. Gossip from third parties never does this.
   *
   * @param m the member
   * @returns whether it was added (and a join event sent)
   */
  admit(m: MemberInfo): boolean {
    this.#gone.delete(m.id);
    return this.add(m);
  }

  /**
   * Remove a member and remember its id.
   *
   * @param id server id
   * @param reason announced or detected
   * @returns whether it was a member (and a leave event sent)
   */
  remove(id: string, reason: "left" | "failed"): boolean {
    const m = this.#members.get(id);
    this.#gone.set(id, Date.now());
    if (!m || id === this.#self.id) return false;
    this.#members.delete(id);
    this.#emit({ type: "leave", member: m, reason });
    return true;
  }

  /**
   * Listen for changes.
   *
   * @param fn called for each event, in order
   * @returns a function that stops listening
   */
  subscribe(fn: (e: MembershipEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #emit(e: MembershipEvent): void {
    for (const fn of this.#listeners) fn(e);
  }

  #expire(): void {
    const cutoff = Date.now() - TOMBSTONE_MS;
    for (const [id, t] of this.#gone) if (t < cutoff) this.#gone.delete(id);
  }
}
