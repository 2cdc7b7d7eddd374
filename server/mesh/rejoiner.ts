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
import type { MemberInfo } from "../../net/wire.ts";
import type { MeshConfig } from "../config.ts";

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
  #retry = new Map<string, { url: string; since: number }>();
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
   * A member failed: re-dial it every `rejoinIntervalMs` for `rejoinForMs`. At most
   * `maxRejoining` are kept; the oldest failure is forgotten first.
   *
   * @param m the member
   */
  failed(m: MemberInfo): void {
    if (this.#closed) return;
    this.#retry.set(m.id, { url: m.url, since: this.#o.clock.now() });
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

  /** Re-dial failed members; drop those that are back, restarted, or gone too long. */
  #rejoin(): void {
    const cutoff = this.#o.clock.now() - this.#o.config.rejoinForMs;
    for (const [id, { url, since }] of this.#retry) {
      if (this.#closed || since < cutoff || this.#o.isMember(id)) {
        this.#retry.delete(id);
        continue;
      }
      if (this.#joining.has(id)) continue;
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
