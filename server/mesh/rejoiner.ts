/**
 * Joins the mesh starts by itself: failed members are re-dialed now and then, so a healed
 * partition merges again with no command, and servers heard through multicast discovery
 * are joined after a random wait.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { Clock } from "../../net/clock.ts";
import { CircuitError } from "../../net/errors.ts";
import { parseUrl } from "../../net/url.ts";
import type { MemberInfo } from "../../net/wire/mod.ts";
import type { MeshConfig } from "../config.ts";

/**
 * Longest time between two re-dials of one failed member, in ms. The wait starts at
 * `rejoinIntervalMs` and doubles after each attempt, with ±50 % jitter: when many members
 * were wrongly declared failed at once (a starved host, a loaded machine), every server
 * re-dialing each of them every 2 s with a keyed handshake and a full-state exchange fed
 * the load that caused it. A member that only looked dead refutes through the membership
 * protocol within a second or so anyway; re-dials are for healed partitions.
 */
export const REJOIN_BACKOFF_MAX_MS = 30_000;

/** Most re-dials started in one round (every `rejoinIntervalMs`). */
export const REJOIN_DIALS_PER_ROUND = 8;

/** What the rejoiner needs. */
export interface RejoinerOptions {
  /** Our id (never joined). */
  selfId: string;
  /** Whether a server is a member now. */
  isMember(id: string): boolean;
  /** Merge with the cluster of `url`. */
  join(url: string, signal: AbortSignal): Promise<void>;
  /** Timings and bounds. */
  config: Pick<
    MeshConfig,
    "rejoinIntervalMs" | "rejoinForMs" | "maxRejoining" | "discoverJitterMs" | "redialTimeoutMs"
  >;
  /** Time limit of a join of an announced server, in ms. */
  dialTimeoutMs: number;
  /** Timers. */
  clock: Clock;
  /** Mesh log. */
  log: Logger;
}

/** Re-dials failed members and joins announced servers. */
export class Rejoiner {
  #o: RejoinerOptions;
  /** Failed members being re-dialed, oldest failure first. */
  #retry = new Map<string, { url: string; since: number; next: number; attempts: number }>();
  /** Joins under way, by server id. */
  #joining = new Set<string>();
  #rejoinTimer: number | undefined;
  #discoverTimers = new Set<number>();
  #closed = false;

  /** @param options how to join, timings, timers */
  constructor(options: RejoinerOptions) {
    this.#o = options;
  }

  /** Failed members being re-dialed. */
  get rejoining(): number {
    return this.#retry.size;
  }

  /** Joins under way. */
  get joining(): number {
    return this.#joining.size;
  }

  /**
   * A member failed: re-dial it for `rejoinForMs`, first after about `rejoinIntervalMs`,
   * then ever less often (see {@linkcode REJOIN_BACKOFF_MAX_MS}). At most
   * `maxRejoining` are kept; the oldest failure is forgotten first.
   *
   * @param m the member
   */
  failed(m: MemberInfo): void {
    if (this.#closed) return;
    const now = this.#o.clock.now();
    const next = now + this.#backoff(0);
    this.#retry.set(m.id, { url: m.url, since: now, next, attempts: 0 });
    if (this.#retry.size > this.#o.config.maxRejoining) {
      this.#retry.delete(this.#retry.keys().next().value!);
    }
    this.#armRejoin();
  }

  /**
   * A member joined (or came back): stop re-dialing it.
   *
   * @param id the member
   */
  joined(id: string): void {
    this.#retry.delete(id);
  }

  /**
   * A server announced itself (multicast discovery): join it unless it is known, after a
   * random wait of up to `discoverJitterMs`, and only if it is still unknown then. When
   * many servers start at once, each hears every other: joining at once made a keyed
   * handshake and a full-state exchange per pair, while after the first few joins gossip
   * makes the rest known.
   *
   * @param url its URL
   */
  discovered(url: string): void {
    let id: string;
    try {
      id = parseUrl(url).id;
    } catch {
      return;
    }
    if (this.#closed || id === this.#o.selfId || this.#o.isMember(id)) return;
    if (this.#joining.has(id)) return;
    this.#joining.add(id);
    const jitter = Math.random() * this.#o.config.discoverJitterMs;
    const timer = this.#o.clock.setTimeout(() => {
      this.#discoverTimers.delete(timer);
      if (this.#closed || this.#o.isMember(id)) {
        this.#joining.delete(id);
        return;
      }
      void this.#o.join(url, AbortSignal.timeout(this.#o.dialTimeoutMs))
        .catch((err) => this.#o.log.debug(`joining announced ${url} failed: ${err.message}`))
        .finally(() => this.#joining.delete(id));
    }, jitter);
    this.#discoverTimers.add(timer);
  }

  /** Stop: no more re-dials or joins are started. */
  close(): void {
    this.#closed = true;
    if (this.#rejoinTimer !== undefined) this.#o.clock.clearTimeout(this.#rejoinTimer);
    this.#rejoinTimer = undefined;
    for (const t of this.#discoverTimers) this.#o.clock.clearTimeout(t);
    this.#discoverTimers.clear();
  }

  /** Run the re-dial round later, unless one is due; idle servers wake for nothing. */
  #armRejoin(): void {
    if (this.#rejoinTimer !== undefined || this.#closed) return;
    this.#rejoinTimer = this.#o.clock.setTimeout(() => {
      this.#rejoinTimer = undefined;
      this.#rejoin();
      if (this.#retry.size > 0) this.#armRejoin();
    }, this.#o.config.rejoinIntervalMs);
  }

  /** The wait before attempt `attempts + 1`: doubling, capped, ±50 % jitter. */
  #backoff(attempts: number): number {
    const base = Math.min(
      this.#o.config.rejoinIntervalMs * 2 ** Math.min(attempts, 16),
      REJOIN_BACKOFF_MAX_MS,
    );
    return base * (0.5 + Math.random());
  }

  /**
   * Re-dial the failed members that are due (at most `REJOIN_DIALS_PER_ROUND`); drop those
   * that are back, restarted, or gone too long.
   */
  #rejoin(): void {
    const now = this.#o.clock.now();
    const cutoff = now - this.#o.config.rejoinForMs;
    let dials = 0;
    for (const [id, entry] of this.#retry) {
      const { url, since } = entry;
      if (this.#closed || since < cutoff || this.#o.isMember(id)) {
        this.#retry.delete(id);
        continue;
      }
      if (this.#joining.has(id) || entry.next > now || dials >= REJOIN_DIALS_PER_ROUND) continue;
      dials++;
      entry.attempts++;
      entry.next = now + this.#backoff(entry.attempts);
      this.#joining.add(id);
      // Success is not enough to stop: the membership layer decides whether it is back.
      void this.#o.join(url, AbortSignal.timeout(this.#o.config.redialTimeoutMs))
        .catch((err) => {
          // A URL that names an earlier incarnation will never answer again.
          if (err instanceof CircuitError && err.code === "not found") this.#retry.delete(id);
        })
        .finally(() => this.#joining.delete(id));
    }
  }
}
