/**
 * The connection handshake: mutual challenge-response over the cluster key, bound to
 * both fresh nonces and the target's identity, deriving per-direction keys with HKDF.
 *
 * ```
 * dialer → target   hello     {v, role, nonce: Nc, to: {pid, id}, keyed, from?}
 * target → dialer   challenge {nonce: Ns, proof: HMAC(K, "circuit/1 server"|Nc|Ns|T)}
 *                   or {error}
 * dialer → target   proof     {proof: HMAC(K, "circuit/1 client"|Nc|Ns|T)}
 * target → dialer   welcome   (first frame sealed with the derived keys) {id, url}
 * ```
 *
 * `T` is `PID/Q<id>` of the target. Keys: HKDF-SHA256(K, salt = Nc|Ns,
 * info = "circuit/1 keys " + T), 128 bytes: dialer→target encryption and MAC keys, then
 * target→dialer encryption and MAC keys. These functions are pure; `conn.ts` does I/O
 * and awaits `loadNodeCrypto()` before it calls the keyed ones.
 *
 * @module
 */

import { nodeCrypto } from "./node_crypto.ts";
import type { DirectionKeys } from "./frame.ts";
import { escapeForLog } from "./escape.ts";

/**
 * Protocol versions this build speaks. Version 2 encrypts each direction's frame bodies as one
 * continuous key stream (version 1 started a new nonce for every frame).
 */
export const PROTOCOL_VERSION_MIN = 2;
/** Protocol versions this build speaks. */
export const PROTOCOL_VERSION_MAX = 2;
/** Bytes of each nonce. */
export const NONCE_BYTES = 32;

/** Who is dialing. */
export type Role = "client" | "peer";

/** The identity a URL names. */
export interface Target {
  /** Daemon process id. */
  pid: number;
  /** Incarnation id, 16 hex digits. */
  id: string;
}

/** A member's self-description, sent by peers. */
export interface PeerInfo {
  /** Server id, 16 hex digits. */
  id: string;
  /** Its URL. */
  url: string;
  /** RFC 3339 start time. */
  joined: string;
}

/** First message, dialer → target. */
export interface Hello {
  /** Supported protocol versions [min, max]. */
  v: [number, number];
  /** Client or peer server. */
  role: Role;
  /** Dialer's nonce. */
  nonce: Uint8Array;
  /** Who the dialer means to reach. */
  to: Target;
  /** Whether the dialer has a key. */
  keyed: boolean;
  /** A peer's own description. */
  from?: PeerInfo;
}

/** Derived keys of one connection. */
export interface SessionKeys {
  /** Dialer → target. */
  dialerToTarget: DirectionKeys;
  /** Target → dialer. */
  targetToDialer: DirectionKeys;
}

/**
 * Make a fresh nonce.
 *
 * @returns {@linkcode NONCE_BYTES} random bytes
 */
export function newNonce(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
}

function targetLabel(t: Target): string {
  return `${t.pid}/Q${t.id}`;
}

/**
 * The proof one side sends.
 *
 * @param key the cluster key
 * @param side whose proof
 * @param dialerNonce Nc
 * @param targetNonce Ns
 * @param target the identity dialed
 * @returns 32 bytes
 */
export function proof(
  key: Uint8Array,
  side: "server" | "client",
  dialerNonce: Uint8Array,
  targetNonce: Uint8Array,
  target: Target,
): Uint8Array {
  return nodeCrypto().createHmac("sha256", key)
    .update(`circuit/1 ${side}`)
    .update(dialerNonce)
    .update(targetNonce)
    .update(targetLabel(target))
    .digest();
}

/**
 * Check a received proof in constant time.
 *
 * @param expected what we computed
 * @param got what arrived (anything)
 * @returns whether they match
 */
export function proofMatches(expected: Uint8Array, got: unknown): boolean {
  return got instanceof Uint8Array && got.length === expected.length &&
    nodeCrypto().timingSafeEqual(expected, got);
}

/**
 * Derive the connection's keys.
 *
 * @param key the cluster key
 * @param dialerNonce Nc
 * @param targetNonce Ns
 * @param target the identity dialed
 * @returns both directions' keys
 */
export function deriveKeys(
  key: Uint8Array,
  dialerNonce: Uint8Array,
  targetNonce: Uint8Array,
  target: Target,
): SessionKeys {
  const salt = new Uint8Array(dialerNonce.length + targetNonce.length);
  salt.set(dialerNonce);
  salt.set(targetNonce, dialerNonce.length);
  const okm = new Uint8Array(
    nodeCrypto().hkdfSync("sha256", key, salt, `circuit/1 keys ${targetLabel(target)}`, 128),
  );
  return {
    dialerToTarget: { encKey: okm.slice(0, 32), macKey: okm.slice(32, 64) },
    targetToDialer: { encKey: okm.slice(64, 96), macKey: okm.slice(96, 128) },
  };
}

/** Longest `url` a peer may describe itself with, in characters. */
const MAX_PEER_URL_CHARS = 512;
/** Longest `joined` time, in characters (RFC 3339 needs about 30). */
const MAX_PEER_JOINED_CHARS = 64;

/** A well-formed {@linkcode PeerInfo}: a 16-hex-digit id and short, printable strings. */
function validPeerInfo(p: unknown): p is PeerInfo {
  const q = p as Partial<PeerInfo> | null;
  return !!q && typeof q === "object" && typeof q.id === "string" &&
    /^[0-9a-f]{16}$/.test(q.id) &&
    typeof q.url === "string" && q.url.length <= MAX_PEER_URL_CHARS &&
    /^[\x21-\x7e]+$/.test(q.url) &&
    typeof q.joined === "string" && q.joined.length <= MAX_PEER_JOINED_CHARS &&
    /^[\x21-\x7e]*$/.test(q.joined);
}

/**
 * Validate a hello as the target, before any key is used.
 *
 * @param hello what arrived
 * @param self the target's identity
 * @param keyed whether the target has a key
 * @returns null when acceptable, else why not (code and sentence)
 */
export function checkHello(
  hello: unknown,
  self: Target,
  keyed: boolean,
): { code: "auth" | "not found" | "bad request"; message: string } | null {
  const h = hello as Partial<Hello> | null;
  if (!h || typeof h !== "object" || !(h.nonce instanceof Uint8Array)) {
    return { code: "bad request", message: "Handshake failed: malformed hello" };
  }
  const v = h.v;
  if (
    !Array.isArray(v) || v.length !== 2 || !v.every(Number.isInteger) || v[0] > v[1] ||
    v[0] > PROTOCOL_VERSION_MAX || v[1] < PROTOCOL_VERSION_MIN
  ) {
    return {
      code: "bad request",
      message:
        `Handshake failed: no common protocol version (server speaks ${PROTOCOL_VERSION_MIN}-${PROTOCOL_VERSION_MAX})`,
    };
  }
  if (h.nonce.length !== NONCE_BYTES || (h.role !== "client" && h.role !== "peer")) {
    return { code: "bad request", message: "Handshake failed: malformed hello" };
  }
  if (h.from !== undefined && !validPeerInfo(h.from)) {
    return { code: "bad request", message: "Handshake failed: malformed hello" };
  }
  const to = h.to as Partial<Target> | undefined;
  if (!to || typeof to !== "object" || to.id !== self.id || to.pid !== self.pid) {
    // Peer-supplied: escaped, as this sentence goes into the log and back to the dialer.
    const id = escapeForLog(to?.id, { maxChars: 32, quote: false });
    const pid = escapeForLog(to?.pid, { maxChars: 32, quote: false });
    return {
      code: "not found",
      message:
        `Dialing failed: the URL names server Q${id} (pid ${pid}), which no longer runs at this address`,
    };
  }
  if (keyed && !h.keyed) {
    return { code: "auth", message: "Handshake failed: the server requires a key (use --hmac)" };
  }
  if (!keyed && h.keyed) {
    return {
      code: "auth",
      message: "Handshake failed: the server runs without a key but the client has one",
    };
  }
  return null;
}
