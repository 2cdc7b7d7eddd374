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

/**
 * Entries that fail to fit scanned past the first one before a packet is given up as full:
 * a packet that cannot take the next message rarely takes one further down, and scanning
 * the whole queue for it made every packet O(depth) (with a join storm queued, O(n)).
 */
const MAX_MISFITS_SCANNED = 32;

/**
 * A bounded queue of broadcasts with a retransmit limit. Entries are kept in buckets by
 * transmissions so far, each bucket sorted by age, so a packet takes the least-sent,
 * newest messages in time proportional to what it takes, not to the depth of the queue
 * (it sorted the whole queue for every packet: at hundreds of members, a join storm spent
 * most of its CPU there).
 */
export class BroadcastQueue {
  #o: BroadcastQueueOptions;
  #byKey = new Map<string, Entry>();
  /** `#buckets[t]`: the entries sent `t` times, oldest first (ascending `order`). */
  #buckets: Entry[][] = [];
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
      this.#remove(old);
      this.#stats.invalidated++;
      old.done?.();
    }
    const e: Entry = { key, bytes, transmits: 0, order: this.#order++, done };
    this.#byKey.set(key, e);
    (this.#buckets[0] ??= []).push(e);
    while (this.#byKey.size > this.#o.maxDepth) {
      // Map order is insertion order: the first entry is the oldest.
      const oldest = this.#byKey.values().next().value!;
      this.#remove(oldest);
      this.#stats.dropped++;
      oldest.done?.();
      this.#o.onDrop?.(oldest.key);
    }
  }

  /**
   * Take messages for one packet: least-sent first, then newest first, as many as fit
   * (the scan stops a few misfits after the first message that does not fit).
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
    const taken: Entry[] = [];
    let left = budgetBytes;
    let misfits = 0;
    scan: for (const bucket of this.#buckets) {
      if (!bucket) continue;
      for (let i = bucket.length - 1; i >= 0; i--) {
        const e = bucket[i];
        const c = cost(e.bytes);
        if (c > left) {
          if (++misfits > MAX_MISFITS_SCANNED) break scan;
          continue;
        }
        left -= c;
        taken.push(e);
      }
    }
    const out: Uint8Array[] = [];
    for (const e of taken) {
      // A `done` called below may have replaced a message taken here: it goes out anyway.
      out.push(e.bytes);
      if (this.#byKey.get(e.key) !== e) continue;
      this.#unbucket(e);
      e.transmits++;
      this.#stats.transmits++;
      if (e.transmits >= limit) {
        this.#byKey.delete(e.key);
        this.#stats.retired++;
        e.done?.();
      } else {
        insertByOrder(this.#buckets[e.transmits] ??= [], e);
      }
    }
    return out;
  }

  /** Empty the queue, telling every waiter its message is done. */
  clear(): void {
    const entries = [...this.#byKey.values()];
    this.#byKey.clear();
    this.#buckets = [];
    for (const e of entries) e.done?.();
  }

  /** Take an entry out of the key index and its bucket. */
  #remove(e: Entry): void {
    this.#byKey.delete(e.key);
    this.#unbucket(e);
  }

  #unbucket(e: Entry): void {
    const bucket = this.#buckets[e.transmits];
    const i = bucket ? indexByOrder(bucket, e.order) : -1;
    if (i >= 0 && bucket[i] === e) bucket.splice(i, 1);
  }
}

/** The index of the first entry whose order is at least `order` (binary search). */
function indexByOrder(bucket: readonly Entry[], order: number): number {
  let [lo, hi] = [0, bucket.length];
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (bucket[mid].order < order) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function insertByOrder(bucket: Entry[], e: Entry): void {
  bucket.splice(indexByOrder(bucket, e.order), 0, e);
}
