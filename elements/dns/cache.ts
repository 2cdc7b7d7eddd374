/**
 * Replies already built, by query. A DNS element answers the same few questions over and
 * over; building a reply (decode, look up, encode) costs several times what the socket
 * does, so replies are kept and a repeat only gets its ID patched in.
 *
 * A reply depends on the query's bytes after the ID, the transport, the records and the
 * round-robin turn, so the key is the transport and those bytes, every change of the
 * records empties the cache, and an answer whose records are rotated keeps one reply per
 * order. Bounded in entries and in bytes; past either, the oldest entries go. Only UDP
 * replies are kept (TCP replies can be 64 KiB, and TCP is the rare path).
 *
 * @module
 */

/** Entries kept at most. */
export const REPLY_CACHE_ENTRIES = 4096;
/** Reply bytes kept at most: 4 MiB. */
export const REPLY_CACHE_BYTES = 4 * 1024 * 1024;
/** Queries longer than this are not cached (a normal one is under 300 bytes). */
const MAX_KEY_BYTES = 512;

/** How many answer orders round robin cycles through for one reply. */
export interface Rotation {
  /** 1 when the reply has one order. */
  period: number;
}

interface Entry {
  /** One reply per rotation, made on first use; null: the query gets no reply. */
  replies: Array<Uint8Array | null | undefined>;
  bytes: number;
}

/** Builds a reply for a round-robin turn and reports how many orders there are. */
export type BuildReply = (turn: number, rotation: Rotation) => Uint8Array | null;

/** The cache of one DNS element. */
export class ReplyCache {
  #entries = new Map<string, Entry>();
  #bytes = 0;
  #version = -1;
  #hits = 0;
  #misses = 0;

  /** Lookups answered from the cache and built afresh. */
  get stats(): { hits: number; misses: number; entries: number; bytes: number } {
    return {
      hits: this.#hits,
      misses: this.#misses,
      entries: this.#entries.size,
      bytes: this.#bytes,
    };
  }

  /**
   * The reply to a UDP query, from the cache or built.
   *
   * @param query the query's bytes
   * @param version the records' version (a change empties the cache)
   * @param turn the round-robin turn
   * @param build makes the reply when it is not cached
   * @returns the reply (a fresh copy with the query's ID), or null to send nothing
   */
  answer(query: Uint8Array, version: number, turn: number, build: BuildReply): Uint8Array | null {
    if (query.length < 12 || query.length > MAX_KEY_BYTES) return build(turn, { period: 1 });
    if (version !== this.#version) {
      this.#entries.clear();
      this.#bytes = 0;
      this.#version = version;
    }
    const key = String.fromCharCode.apply(null, query.subarray(2) as unknown as number[]);
    let entry = this.#entries.get(key);
    if (entry) {
      const i = turn % entry.replies.length;
      const hit = entry.replies[i];
      if (hit !== undefined) {
        this.#hits++;
        return hit && withId(hit, query);
      }
    }
    this.#misses++;
    const rotation = { period: 1 };
    const reply = build(turn, rotation);
    if (!entry) {
      entry = { replies: new Array(Math.max(1, rotation.period)), bytes: key.length };
      this.#entries.set(key, entry);
      this.#bytes += key.length;
    }
    if (entry.replies.length === Math.max(1, rotation.period)) {
      entry.replies[turn % entry.replies.length] = reply;
      const n = reply?.length ?? 0;
      entry.bytes += n;
      this.#bytes += n;
    }
    this.#evict();
    return reply;
  }

  #evict(): void {
    while (this.#entries.size > REPLY_CACHE_ENTRIES || this.#bytes > REPLY_CACHE_BYTES) {
      const [oldest, e] = this.#entries.entries().next().value!;
      this.#entries.delete(oldest);
      this.#bytes -= e.bytes;
    }
  }
}

function withId(reply: Uint8Array, query: Uint8Array): Uint8Array {
  // A copy (not `slice()`: on a Buffer, which dns-packet returns, that is a view).
  const out = new Uint8Array(reply.length);
  out.set(reply);
  out[0] = query[0];
  out[1] = query[1];
  return out;
}
