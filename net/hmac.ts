/**
 * HMAC-SHA256 (RFC 2104) of a label and a body, for the datagrams of membership and
 * discovery. It is computed from two one-shot SHA-256 calls over pads made once per key
 * and label. The bytes are those of `createHmac(...).update(label).update(body)`, but
 * `createHmac` builds a stream object per call, about 4× the cost in the rarely run (so
 * never optimised) code of an idle server. (Frames on connections use the hash-state
 * copies of `net/frame.ts`, faster once warm.)
 *
 * @module
 */

import { hash } from "node:crypto";

const BLOCK = 64;
const DIGEST = 32;

interface Pads {
  /** The key XOR ipad, then the label. */
  inner: Uint8Array;
  /** The key XOR opad, then room for the inner digest. */
  outer: Uint8Array;
}

const PADS = new WeakMap<Uint8Array, Map<string, Pads>>();

/**
 * The MAC of `label || body` under `key`.
 *
 * @param key the key (any length; longer than a block is hashed first, as RFC 2104 says)
 * @param label a context string that keeps MACs of different uses apart
 * @param body the bytes to authenticate
 * @returns the 32-byte MAC
 */
export function hmacSha256(key: Uint8Array, label: string, body: Uint8Array): Uint8Array {
  const pads = padsOf(key, label);
  const msg = new Uint8Array(pads.inner.length + body.length);
  msg.set(pads.inner);
  msg.set(body, pads.inner.length);
  const outer = pads.outer.slice();
  outer.set(sha256(msg), BLOCK);
  return sha256(outer);
}

function padsOf(key: Uint8Array, label: string): Pads {
  let byLabel = PADS.get(key);
  if (!byLabel) PADS.set(key, byLabel = new Map());
  let pads = byLabel.get(label);
  if (pads) return pads;
  const k = new Uint8Array(BLOCK);
  k.set(key.length > BLOCK ? sha256(key) : key);
  const labelBytes = new TextEncoder().encode(label);
  const inner = new Uint8Array(BLOCK + labelBytes.length);
  const outer = new Uint8Array(BLOCK + DIGEST);
  for (let i = 0; i < BLOCK; i++) {
    inner[i] = k[i] ^ 0x36;
    outer[i] = k[i] ^ 0x5c;
  }
  inner.set(labelBytes, BLOCK);
  pads = { inner, outer };
  byLabel.set(label, pads);
  return pads;
}

function sha256(bytes: Uint8Array): Uint8Array {
  return hash("sha256", bytes, "buffer") as unknown as Uint8Array;
}
