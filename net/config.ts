/**
 * Transport limits and timings, in one place. Every field has a unit in its name.
 *
 * @module
 */

import { EPOCH_BYTES } from "./frame.ts";

/**
 * Largest frame body of the handshake (hello, challenge, proof), in bytes. A pending
 * connection never holds more than one such frame and its length prefix.
 */
export const HANDSHAKE_MAX_FRAME_BYTES = 4096;

/**
 * Time a connection is given from accept to the end of its handshake, in milliseconds;
 * then it is closed. Every byte before it is from a peer not yet authenticated.
 */
export const HANDSHAKE_TIMEOUT_MS = 5000;

/**
 * Free memory asked for each socket read once a connection is authenticated, in bytes.
 * Before that a connection reads at most one handshake frame
 * ({@linkcode HANDSHAKE_MAX_FRAME_BYTES} plus its 4-byte length).
 */
export const READ_BYTES = 64 * 1024;

/**
 * Environment variable that sets the default `epochBytes` (tests only: a tiny epoch
 * exercises the epoch change without sending 64 GiB). Read once, here.
 */
export const TEST_EPOCH_ENV = "CIRCUIT_TEST_EPOCH_BYTES";

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
  /**
   * Key stream bytes per ChaCha20 nonce (epoch) in each direction; both ends must agree, so
   * only tests change it (through the option or `CIRCUIT_TEST_EPOCH_BYTES`). At most the
   * default.
   * @default {68719476736}
   */
  epochBytes: number;
}

/** `CIRCUIT_TEST_EPOCH_BYTES` when set and readable without a prompt, else the default. */
function defaultEpochBytes(): number {
  try {
    const q = Deno.permissions.querySync({ name: "env", variable: TEST_EPOCH_ENV });
    if (q.state !== "granted") return EPOCH_BYTES;
    const v = Deno.env.get(TEST_EPOCH_ENV);
    return v ? Number(v) : EPOCH_BYTES;
  } catch {
    return EPOCH_BYTES;
  }
}

/** The defaults, for a LAN. */
export const DEFAULT_TRANSPORT_CONFIG: Readonly<TransportConfig> = Object.freeze({
  maxFrameBytes: 4 * 1024 * 1024,
  coalesceBytes: 256 * 1024,
  maxChunkBytes: 64 * 1024,
  pingIntervalMs: 1000,
  deadAfterMs: 2500,
  dialTimeoutMs: 3000,
  epochBytes: defaultEpochBytes(),
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
  if (!Number.isInteger(c.epochBytes) || c.epochBytes > EPOCH_BYTES) {
    throw new RangeError(
      `Transport config field "epochBytes" must be a whole number of at most ${EPOCH_BYTES}, got ${c.epochBytes}`,
    );
  }
  if (c.maxChunkBytes + 64 > c.maxFrameBytes) {
    throw new RangeError(`Transport config field "maxChunkBytes" must be below maxFrameBytes`);
  }
  return c;
}
