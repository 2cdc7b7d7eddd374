/**
 * The broadcast queue: gossip waiting to be piggybacked on outgoing packets. Each message
 * is about one member and is sent a limited number of times, least-sent first; a newer
 * message about a member replaces the older one, and at its bound the queue drops its
 * oldest message (counted; push-pull repairs what it would have said).
 *
 * @module
 */

/**
 * How many times a broadcast is sent before it is retired:
 * `retransmitMult × ceil(log10(n + 1))`, at least once.
 *
 * @param retransmitMult the multiplier
 * @param n live members, ourselves included
 * @returns the transmit limit
 */
export function retransmitLimit(retransmitMult: number, n: number): number {
  return Math.max(1, retransmitMult * Math.ceil(Math.log10(n + 1)));
}

/** Options of {@linkcode BroadcastQueue}. */
export interface BroadcastQueueOptions {
  /** The bound, in messages (`maxQueuedBroadcasts`). */
  maxDepth: number;
  /** The retransmit multiplier (`retransmitMult`). */
  retransmitMult: number;
  /** Told when a message is dropped at the bound (for the log). */
  onDrop?: (key: string) => void;
}

/** Counters of a {@linkcode BroadcastQueue}. */
export interface BroadcastQueueStats {
  /** Messages waiting. */
  depth: number;
  /** Messages replaced by a newer one about the same member. */
  invalidated: number;
  /** Messages dropped at the bound, oldest first. */
  dropped: number;
  /** Messages sent as often as the transmit limit allows. */
  retired: number;
  /** Transmissions, all messages together. */
  transmits: number;
}

interface Entry {
  key: string;
  bytes: Uint8Array;
  transmits: number;
  order: number;
  done: (() => void) | undefined;
}

/** A bounded queue of broadcasts with a retransmit limit. */
export class BroadcastQueue {
  #o: BroadcastQueueOptions;
  #byKey = new Map<string, Entry>();
  #order = 0;
  #stats = { invalidated: 0, dropped: 0, retired: 0, transmits: 0 };

  /**
   * Make an empty queue.
   *
   * @param options bound and retransmit multiplier
   */
  constructor(options: BroadcastQueueOptions) {
    this.#o = options;
  }

  /** Messages waiting. */
  get depth(): number {
    return this.#byKey.size;
  }

  /**
   * The counters, for `stk`.
   *
   * @returns a snapshot
   */
  stats(): BroadcastQueueStats {
    return { depth: this.depth, ...this.#stats };
  }

  /**
   * Queue a message about a member, replacing any older one about it.
   *
   * @param key the member id the message is about
   * @param bytes the encoded message
   * @param done called once when the message leaves the queue (retired, replaced or dropped)
   */
  enqueue(key: string, bytes: Uint8Array, done?: () => void): void {
    const old = this.#byKey.get(key);
    if (old) {
      this.#byKey.delete(key);
      this.#stats.invalidated++;
      old.done?.();
    }
    this.#byKey.set(key, { key, bytes, transmits: 0, order: this.#order++, done });
    while (this.#byKey.size > this.#o.maxDepth) {
      // Map order is insertion order: the first entry is the oldest.
      const [oldestKey, oldest] = this.#byKey.entries().next().value!;
      this.#byKey.delete(oldestKey);
      this.#stats.dropped++;
      oldest.done?.();
      this.#o.onDrop?.(oldestKey);
    }
  }

  /**
   * Take messages for one packet: least-sent first, then newest first, as many as fit.
   * Each taken message counts one transmission; those at the limit are retired.
   *
   * @param budgetBytes room left in the packet
   * @param n live members, ourselves included (sets the transmit limit)
   * @param cost bytes a message takes in the packet
   * @returns the encoded messages
   */
  take(
    budgetBytes: number,
    n: number,
    cost: (bytes: Uint8Array) => number = (b) => b.length,
  ): Uint8Array[] {
    if (this.#byKey.size === 0) return [];
    const limit = retransmitLimit(this.#o.retransmitMult, n);
    const candidates = [...this.#byKey.values()]
      .sort((a, b) => a.transmits - b.transmits || b.order - a.order);
    const out: Uint8Array[] = [];
    let left = budgetBytes;
    for (const e of candidates) {
      const c = cost(e.bytes);
      if (c > left) continue;
      left -= c;
      out.push(e.bytes);
      e.transmits++;
      this.#stats.transmits++;
      if (e.transmits >= limit) {
        this.#byKey.delete(e.key);
        this.#stats.retired++;
        e.done?.();
      }
    }
    return out;
  }

  /** Empty the queue, telling every waiter its message is done. */
  clear(): void {
    const entries = [...this.#byKey.values()];
    this.#byKey.clear();
    for (const e of entries) e.done?.();
  }
}
