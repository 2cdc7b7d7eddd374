/**
 * Signed datagrams: the one place where a UDP packet of membership or discovery is
 * sealed with the cluster key and checked on arrival. A packet body is a msgpack map
 * carrying the sender's clock and a random nonce; with a key it also carries a 32-byte
 * HMAC-SHA256 of a per-use label and the encoded body ({@linkcode hmacSha256}). A
 * received packet is dropped, and counted by reason, when it does not decode or has the
 * wrong shape (`malformed`), its MAC is wrong or missing (`forged`), its clock is
 * further from ours than the skew window (`stale`), or its nonce was seen already
 * (`replayed`).
 *
 * Two placements of the MAC exist on the wire, one per use, both kept byte for byte:
 *
 * - `prefix` (membership): the datagram is `mac ‖ body`; the MAC is checked before the
 *   body is decoded.
 * - `field` (discovery): the datagram is the body map with one more entry, `mac`; the
 *   map is decoded and its shape checked first, then the MAC is checked over the map
 *   without `mac`, encoded again.
 *
 * Nonces are remembered in a {@linkcode ReplayWindow}: each for two skew windows after
 * it arrived (a replay after that is stale anyway), at most `nonceCacheSize` of them;
 * nonces forced out earlier by that bound are counted in `evicted`.
 *
 * @example Seal and verify
 * ```ts ignore
 * const format: DatagramFormat<string> = {
 *   label: "circuit/1 example",
 *   mac: "prefix",
 *   read: (b) => typeof b.x === "string" && b.n instanceof Uint8Array && typeof b.ts === "number"
 *     ? { value: b.x, ts: b.ts, nonce: b.n }
 *     : null,
 * };
 * const key = crypto.getRandomValues(new Uint8Array(32));
 * const bytes = sealDatagram(format, { x: "hi", ts: Date.now(), n: newNonce(12) }, key);
 * const v = new DatagramVerifier(format, key, { maxSkewMs: 30_000, nonceCacheSize: 1024 });
 * v.verify(bytes); // "hi"
 * v.verify(bytes); // null: replayed
 * ```
 *
 * @module
 */

import { timingSafeEqual } from "node:crypto";
import { Packr } from "msgpackr/pack";
import { hmacSha256 } from "./hmac.ts";

const packr = new Packr({ useRecords: false, moreTypes: false });

/** Bytes of a datagram MAC (HMAC-SHA256). */
export const MAC_BYTES = 32;

/** The map entry that holds the MAC in the `field` placement. */
const MAC_FIELD = "mac";

/** Why a datagram was dropped. */
export type DatagramDropReason = "malformed" | "forged" | "stale" | "replayed";

/** What a well-formed body yields: the value to hand on, its clock and its nonce. */
export interface StampedBody<T> {
  /** What {@linkcode DatagramVerifier.verify} returns. */
  value: T;
  /** The sender's clock, ms since the epoch (a finite number). */
  ts: number;
  /** The packet's random nonce. */
  nonce: Uint8Array;
  /**
   * Keeps nonces of different packet types apart in the replay cache (the same nonce
   * under two scopes is no replay).
   * @default {""}
   */
  scope?: string;
}

/** How one use of signed datagrams lays out and reads its packets. */
export interface DatagramFormat<T> {
  /** Context string of the MAC, distinct per use (`circuit/1 membership`). */
  label: string;
  /** Where the MAC sits: before the body (`prefix`) or as its `mac` entry (`field`). */
  mac: "prefix" | "field";
  /**
   * Check a decoded body's shape and bounds. It must not throw.
   *
   * @param body the decoded map (without `mac` in the `field` placement)
   * @returns the value, clock and nonce, or null when malformed
   */
  read(body: Record<string, unknown>): StampedBody<T> | null;
}

/** Bounds of freshness checks. */
export interface FreshnessOptions {
  /** A packet whose clock is further than this from ours is stale, in ms. */
  maxSkewMs: number;
  /** Nonces remembered at most (oldest forgotten first). */
  nonceCacheSize: number;
}

/**
 * A random nonce.
 *
 * @param bytes its length
 * @returns fresh random bytes
 */
export function newNonce(bytes: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(bytes));
}

/**
 * Encode a body as a datagram of a format, signed when there is a key.
 *
 * @param format the label and the MAC's placement
 * @param body the map to send (its clock and nonce included)
 * @param key the cluster key; without one the datagram is the encoded body alone
 * @returns the datagram
 */
export function sealDatagram<T>(
  format: DatagramFormat<T>,
  body: Record<string, unknown>,
  key?: Uint8Array,
): Uint8Array {
  const encoded: Uint8Array = packr.pack(body);
  if (!key) return encoded;
  const mac = hmacSha256(key, format.label, encoded);
  if (format.mac === "field") return packr.pack({ ...body, [MAC_FIELD]: mac });
  const out = new Uint8Array(MAC_BYTES + encoded.length);
  out.set(mac);
  out.set(encoded, MAC_BYTES);
  return out;
}

/**
 * Remembers the nonces of accepted packets to catch replays. A nonce is kept for two
 * skew windows after it arrived: a packet accepted at `a` has a clock of at least
 * `a - skew`, so a replay after `a + 2·skew` is stale. At most `nonceCacheSize` are kept;
 * one forced out before its time is counted in `evicted` (a replay of it would pass).
 */
export class ReplayWindow {
  #skewMs: number;
  #cacheSize: number;
  #seen = new Map<string, number>();
  /** Nonces forgotten early because the cache was full (replays of them would pass). */
  evicted = 0;

  /**
   * Make an empty window.
   *
   * @param options the skew window and the cache bound
   */
  constructor(options: FreshnessOptions) {
    this.#skewMs = options.maxSkewMs;
    this.#cacheSize = options.nonceCacheSize;
  }

  /**
   * Remember a nonce unless it is already remembered.
   *
   * @param id the nonce (with its scope) as a string
   * @param now our clock, ms since the epoch
   * @returns false when it was seen before (a replay)
   */
  admit(id: string, now: number): boolean {
    this.#forgetOld(now);
    if (this.#seen.has(id)) return false;
    this.#seen.set(id, now);
    return true;
  }

  /** Drop nonces past two skew windows, and the oldest while the cache is full. */
  #forgetOld(now: number): void {
    const oldest = now - 2 * this.#skewMs;
    for (const [id, at] of this.#seen) {
      if (at >= oldest && this.#seen.size < this.#cacheSize) break;
      if (at >= oldest) this.evicted++;
      this.#seen.delete(id);
    }
  }
}

/** Checks datagrams of one format: MAC, shape, clock, nonce; counts what it drops. */
export class DatagramVerifier<T> {
  #format: DatagramFormat<T>;
  #key: Uint8Array | undefined;
  #skewMs: number;
  #window: ReplayWindow;
  /** Packets dropped, by reason. */
  readonly dropped: Record<DatagramDropReason, number> = {
    malformed: 0,
    forged: 0,
    stale: 0,
    replayed: 0,
  };

  /**
   * Make a verifier with an empty nonce cache.
   *
   * @param format the label, the MAC's placement and the body reader
   * @param key the cluster key; without one, packets carry no MAC
   * @param options the skew window and the nonce cache bound
   */
  constructor(format: DatagramFormat<T>, key: Uint8Array | undefined, options: FreshnessOptions) {
    this.#format = format;
    this.#key = key;
    this.#skewMs = options.maxSkewMs;
    this.#window = new ReplayWindow(options);
  }

  /** Nonces forgotten early because the cache was full (replays of them would pass). */
  get evicted(): number {
    return this.#window.evicted;
  }

  /**
   * Verify a datagram. Never throws, whatever the bytes.
   *
   * @param bytes what arrived
   * @param now our clock, ms since the epoch
   * @returns the body's value, or null when dropped (and counted)
   */
  verify(bytes: Uint8Array, now: number = Date.now()): T | null {
    const stamped = this.#format.mac === "prefix"
      ? this.#openPrefix(bytes)
      : this.#openField(bytes);
    if (typeof stamped === "string") return this.#drop(stamped);
    if (Math.abs(now - stamped.ts) > this.#skewMs) return this.#drop("stale");
    const id = `${stamped.scope ?? ""}:${hex(stamped.nonce)}`;
    if (!this.#window.admit(id, now)) return this.#drop("replayed");
    return stamped.value;
  }

  /** `mac ‖ body`: the MAC first, then the body. */
  #openPrefix(bytes: Uint8Array): StampedBody<T> | DatagramDropReason {
    let body = bytes;
    if (this.#key) {
      if (bytes.length <= MAC_BYTES) return "forged";
      body = bytes.subarray(MAC_BYTES);
      const want = hmacSha256(this.#key, this.#format.label, body);
      if (!timingSafeEqual(want, bytes.subarray(0, MAC_BYTES))) return "forged";
    }
    const map = decodeMap(body);
    return (map && this.#format.read(map)) ?? "malformed";
  }

  /** `{...body, mac}`: the shape first, then the MAC over the body encoded again. */
  #openField(bytes: Uint8Array): StampedBody<T> | DatagramDropReason {
    const map = decodeMap(bytes);
    if (!map) return "malformed";
    const { [MAC_FIELD]: mac, ...body } = map;
    const stamped = this.#format.read(body);
    if (!stamped) return "malformed";
    if (!this.#key) return stamped;
    let want: Uint8Array;
    try {
      want = hmacSha256(this.#key, this.#format.label, packr.pack(body));
    } catch {
      return "malformed"; // extra fields that do not encode again
    }
    if (!(mac instanceof Uint8Array) || mac.length !== want.length || !timingSafeEqual(want, mac)) {
      return "forged";
    }
    return stamped;
  }

  #drop(reason: DatagramDropReason): null {
    this.dropped[reason]++;
    return null;
  }
}

/** The bytes as a msgpack map, or null when they are not one. */
function decodeMap(bytes: Uint8Array): Record<string, unknown> | null {
  let raw: unknown;
  try {
    raw = packr.unpack(bytes);
  } catch {
    return null;
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw) || raw instanceof Uint8Array) {
    return null;
  }
  return raw as Record<string, unknown>;
}

function hex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += (b < 16 ? "0" : "") + b.toString(16);
  return s;
}
