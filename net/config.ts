/**
 * Transport limits and timings, in one place. Every field has a unit in its name.
 *
 * @module
 */

/** Limits and timings of one multiplexed connection. */
export interface TransportConfig {
  /**
   * Largest frame body accepted or sent, in bytes; a larger length prefix closes the
   * connection as a protocol violation.
   * @default {4194304}
   */
  maxFrameBytes: number;
  /**
   * Messages are coalesced into one frame up to this many body bytes, so the per-frame
   * MAC is paid once for many small messages.
   * @default {262144}
   */
  coalesceBytes: number;
  /**
   * Largest DATA chunk put in one message, in bytes.
   * @default {65536}
   */
  maxChunkBytes: number;
  /**
   * Keep-alive interval in milliseconds: a connection that has received nothing for this
   * long sends a ping (busy connections send none).
   * @default {1000}
   */
  pingIntervalMs: number;
  /**
   * A connection that has received nothing for this long is closed as dead.
   * Formula: 2.5 × pingIntervalMs, so a ping and its answer may both be lost once.
   * @default {2500}
   */
  deadAfterMs: number;
  /**
   * Time allowed for TCP connect plus the handshake, in milliseconds.
   * @default {3000}
   */
  dialTimeoutMs: number;
}

/** The defaults, for a LAN. */
export const DEFAULT_TRANSPORT_CONFIG: Readonly<TransportConfig> = Object.freeze({
  maxFrameBytes: 4 * 1024 * 1024,
  coalesceBytes: 256 * 1024,
  maxChunkBytes: 64 * 1024,
  pingIntervalMs: 1000,
  deadAfterMs: 2500,
  dialTimeoutMs: 3000,
});

/**
 * Merge overrides into the defaults and check every field.
 *
 * @param overrides fields to change
 * @returns a complete, validated config
 * @throws {RangeError} naming the first bad field
 */
export function transportConfig(overrides: Partial<TransportConfig> = {}): TransportConfig {
  const c = { ...DEFAULT_TRANSPORT_CONFIG, ...overrides };
  for (const [k, v] of Object.entries(c)) {
    if (!Number.isFinite(v) || v <= 0) {
      throw new RangeError(`Transport config field "${k}" must be a positive number, got ${v}`);
    }
  }
  if (c.maxChunkBytes + 64 > c.maxFrameBytes) {
    throw new RangeError(`Transport config field "maxChunkBytes" must be below maxFrameBytes`);
  }
  return c;
}
