/**
 * The frame codec: bytes in, whole frames out. It never touches a socket.
 *
 * A frame on the wire is `length (u32, big-endian) | body | mac`. Without keys the body
 * is plain and there is no MAC (loopback-only mode). With keys the body is
 * ChaCha20 (RFC 8439) ciphertext under the direction's encryption key, block counter 0
 * and 96-bit nonce `seq (u64) | 0 (u32)`, and the MAC is HMAC-SHA256 under the
 * direction's MAC key over `length (u32) | ciphertext | seq (u64)` (encrypt-then-MAC).
 * `seq` is implicit: both sides count frames, so a replayed, dropped or reordered frame
 * fails its MAC. The MAC input is contiguous (the sequence number is written where the
 * MAC then goes) and the HMAC's inner and outer pad states are computed once per key,
 * so each frame costs two hash updates instead of an HMAC set-up and three updates.
 *
 * @module
 */

import { createCipheriv, createDecipheriv, createHash, timingSafeEqual } from "node:crypto";
import type { Hash } from "node:crypto";

/** Bytes of the length prefix. */
export const LENGTH_BYTES = 4;
/** Bytes of the MAC after each keyed frame. */
export const MAC_BYTES = 32;

/** The keys of one direction of a connection. */
export interface DirectionKeys {
  /** ChaCha20 key, 32 bytes. */
  encKey: Uint8Array;
  /** HMAC-SHA256 key, 32 bytes. */
  macKey: Uint8Array;
}

/** Why a byte stream was rejected. */
export type FrameErrorReason = "oversized" | "bad mac" | "truncated";

/** A protocol violation in the byte stream; the connection must close. */
export class FrameError extends Error {
  /** What was wrong. */
  readonly reason: FrameErrorReason;

  /**
   * @param reason what was wrong
   * @param message details
   */
  constructor(reason: FrameErrorReason, message: string) {
    super(message);
    this.name = "FrameError";
    this.reason = reason;
  }
}

const CIPHER = "chacha20";

/** OpenSSL's ChaCha20 IV: 32-bit block counter (0), then the 96-bit nonce. */
function counterBlock(seq: bigint): Uint8Array {
  const iv = new Uint8Array(16);
  new DataView(iv.buffer).setBigUint64(4, seq);
  return iv;
}

const SEQ_BYTES = 8;
const HMAC_BLOCK_BYTES = 64;

/** HMAC-SHA256 (RFC 2104) with the key's pad states hashed once. */
class Hmac {
  #inner: Hash;
  #outer: Hash;

  constructor(key: Uint8Array) {
    const k = key.length > HMAC_BLOCK_BYTES ? createHash("sha256").update(key).digest() : key;
    const ipad = new Uint8Array(HMAC_BLOCK_BYTES).fill(0x36);
    const opad = new Uint8Array(HMAC_BLOCK_BYTES).fill(0x5c);
    for (let i = 0; i < k.length; i++) {
      ipad[i] ^= k[i];
      opad[i] ^= k[i];
    }
    this.#inner = createHash("sha256").update(ipad);
    this.#outer = createHash("sha256").update(opad);
  }

  digest(data: Uint8Array): Uint8Array {
    const inner = this.#inner.copy().update(data).digest();
    return this.#outer.copy().update(inner).digest();
  }
}

/**
 * The MAC of the frame in `buf[at .. at + LENGTH_BYTES + n)`, computed over that and the
 * sequence number written just after it (where the MAC goes).
 */
function macOf(mac: Hmac, seq: bigint, buf: Uint8Array, at: number, n: number): Uint8Array {
  const end = at + LENGTH_BYTES + n;
  new DataView(buf.buffer, buf.byteOffset + end, SEQ_BYTES).setBigUint64(0, seq);
  return mac.digest(buf.subarray(at, end + SEQ_BYTES));
}

/** Turns frame bodies into wire bytes, counting frames. */
export class FrameSealer {
  #keys: DirectionKeys | undefined;
  #mac: Hmac | undefined;
  #seq = 0n;

  /** @param keys this direction's keys, or none for plain frames */
  constructor(keys?: DirectionKeys) {
    this.#keys = keys;
    this.#mac = keys ? new Hmac(keys.macKey) : undefined;
  }

  /**
   * Seal one body.
   *
   * @param body the plaintext frame body
   * @returns the bytes to write
   */
  seal(body: Uint8Array): Uint8Array {
    const keys = this.#keys;
    const macLen = keys ? MAC_BYTES : 0;
    const out = new Uint8Array(LENGTH_BYTES + body.length + macLen);
    new DataView(out.buffer).setUint32(0, body.length);
    if (!keys) {
      out.set(body, LENGTH_BYTES);
      return out;
    }
    const seq = this.#seq++;
    const c = createCipheriv(CIPHER, keys.encKey, counterBlock(seq));
    out.set(c.update(body), LENGTH_BYTES);
    c.final(); // releases the cipher's resource; a stream cipher has no tail
    out.set(macOf(this.#mac!, seq, out, 0, body.length), LENGTH_BYTES + body.length);
    return out;
  }
}

/** Turns wire bytes into frame bodies, checking length and MAC. */
export class FrameOpener {
  #keys: DirectionKeys | undefined;
  #mac: Hmac | undefined;
  #maxFrameBytes: number;
  #seq = 0n;
  #buf = new Uint8Array(0);
  #len = 0;

  /**
   * @param keys this direction's keys, or none for plain frames
   * @param maxFrameBytes the largest body accepted
   */
  constructor(keys: DirectionKeys | undefined, maxFrameBytes: number) {
    this.#keys = keys;
    this.#mac = keys ? new Hmac(keys.macKey) : undefined;
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Bytes buffered that do not yet make a whole frame. */
  get pendingBytes(): number {
    return this.#len;
  }

  /**
   * Feed bytes; get every frame they complete.
   *
   * @param chunk bytes as read from the socket, any size
   * @returns the bodies of the frames completed, in order
   * @throws {FrameError} on an oversized length or a bad MAC
   */
  push(chunk: Uint8Array): Uint8Array[] {
    this.#append(chunk);
    const out: Uint8Array[] = [];
    const macLen = this.#keys ? MAC_BYTES : 0;
    let off = 0;
    while (this.#len - off >= LENGTH_BYTES) {
      const view = new DataView(this.#buf.buffer, this.#buf.byteOffset + off, LENGTH_BYTES);
      const n = view.getUint32(0);
      if (n > this.#maxFrameBytes) {
        throw new FrameError(
          "oversized",
          `Reading frame failed: length ${n} exceeds the limit of ${this.#maxFrameBytes} bytes`,
        );
      }
      const total = LENGTH_BYTES + n + macLen;
      if (this.#len - off < total) break;
      out.push(this.#open(off, n));
      off += total;
    }
    if (off > 0) {
      this.#buf.copyWithin(0, off, this.#len);
      this.#len -= off;
    }
    return out;
  }

  /**
   * Declare the end of the byte stream.
   *
   * @throws {FrameError} `truncated` when a partial frame is left over
   */
  end(): void {
    if (this.#len > 0) {
      throw new FrameError(
        "truncated",
        `Reading frame failed: stream ended inside a frame with ${this.#len} bytes buffered`,
      );
    }
  }

  /** Check and decrypt the frame at `#buf[at]` with an `n`-byte body. */
  #open(at: number, n: number): Uint8Array {
    const keys = this.#keys;
    const body = this.#buf.subarray(at + LENGTH_BYTES, at + LENGTH_BYTES + n);
    if (!keys) return body.slice();
    const seq = this.#seq++;
    const macAt = at + LENGTH_BYTES + n;
    const got = this.#buf.slice(macAt, macAt + MAC_BYTES); // before the seq overwrites it
    const want = macOf(this.#mac!, seq, this.#buf, at, n);
    if (!timingSafeEqual(want, got)) {
      throw new FrameError("bad mac", `Reading frame ${seq} failed: MAC mismatch`);
    }
    const d = createDecipheriv(CIPHER, keys.encKey, counterBlock(seq));
    const pt = new Uint8Array(d.update(body));
    d.final();
    return pt;
  }

  #append(chunk: Uint8Array): void {
    const need = this.#len + chunk.length;
    if (need > this.#buf.length) {
      const next = new Uint8Array(Math.max(need, this.#buf.length * 2, 4096));
      next.set(this.#buf.subarray(0, this.#len));
      this.#buf = next;
    }
    this.#buf.set(chunk, this.#len);
    this.#len = need;
  }
}
