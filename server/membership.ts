/**
 * The member table: who is in the cluster, with join and leave events. This is the one
 * interface the rest of the server uses (`ls /`, routing, `@join` and `@leave`); the SWIM
 * layer (`net/membership/`) feeds it through `admit` and `remove`.
 *
 * @module
 */

import type { MemberInfo } from "../net/wire/mod.ts";
import { LogThrottle } from "./log.ts";

/**
 * Lines per 10 s about members that joined, and about members that failed or left; the
 * rest of a window is summed up in one line (`… and 312 more members failed or left in
 * the last 10 s`). A join of 100 servers writes 99 join lines; a flapping storm at 100
 * servers once wrote tens of thousands of departure lines per server.
 */
export const MEMBER_LOG_LINES: Readonly<{ joined: number; departed: number }> = Object.freeze({
  joined: 128,
  departed: 32,
});

/** A membership change. */
export interface MembershipEvent {
  /** Joined or left (gracefully or by failure). */
  type: "join" | "leave";
  /** The member. */
  member: MemberInfo;
  /** Why it left: `left` (announced) or `failed` (detected). */
  reason?: "left" | "failed";
}

/**
 * Live members and listeners for changes. Which departed members may return is the
 * membership layer's decision (incarnation numbers), so the table keeps no tombstones.
 */
export class MemberTable {
  #self: MemberInfo;
  #members = new Map<string, MemberInfo>();
  #listeners = new Set<(e: MembershipEvent) => void>();

  /**
   * A table holding only this server.
   *
   * @param self this server
   */
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
   * The members for `stk`.
   *
   * @returns every live member's name (`X…`), sorted
   */
  describe(): string[] {
    return this.list().map((m) => `X${m.id}`);
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
   * Add a member (the membership layer saw it join or return).
   *
   * @param m the member
   * @returns whether it was added (and a join event sent); false when already a member
   */
  admit(m: MemberInfo): boolean {
    if (this.#members.has(m.id)) return false;
    this.#members.set(m.id, m);
    this.#emit({ type: "join", member: m });
    return true;
  }

  /**
   * Remove a member.
   *
   * @param id server id
   * @param reason announced or detected
   * @returns whether it was a member (and a leave event sent)
   */
  remove(id: string, reason: "left" | "failed"): boolean {
    const m = this.#members.get(id);
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
}

/**
 * The `member X… joined|failed|left` log lines, bounded per window (see
 * {@linkcode MEMBER_LOG_LINES}).
 */
export class MemberEventLog {
  #joins: LogThrottle;
  #departures: LogThrottle;

  /**
   * @param sink where lines go (the membership logger's `info`)
   * @param lines lines per window; default {@linkcode MEMBER_LOG_LINES}
   */
  constructor(
    sink: (message: string) => void,
    lines: { joined: number; departed: number } = MEMBER_LOG_LINES,
  ) {
    this.#joins = new LogThrottle({ sink, what: "members joined", linesPerWindow: lines.joined });
    this.#departures = new LogThrottle({
      sink,
      what: "members failed or left",
      linesPerWindow: lines.departed,
    });
  }

  /**
   * Log a membership change.
   *
   * @param e the event
   */
  log(e: MembershipEvent): void {
    if (e.type === "join") this.#joins.log(`member X${e.member.id} joined`);
    else this.#departures.log(`member X${e.member.id} ${e.reason === "left" ? "left" : "failed"}`);
  }

  /** Write the summaries now and stop. */
  close(): void {
    this.#joins.close();
    this.#departures.close();
  }
}
