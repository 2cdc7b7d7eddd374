/**
 * The frame codec: bytes in, whole frames out. It never touches a socket.
 *
 * A frame on the wire is `length (u32, big-endian) | body | mac`. Without keys the body
 * is plain and there is no MAC (loopback-only mode). With keys the body is
 * ChaCha20 (RFC 8439) ciphertext under the direction's encryption key, block counter 0
 * and 96-bit nonce `seq (u64) | 0 (u32)`, and the MAC is HMAC-SHA256 under the
 * direction's MAC key over
 * `seq (u64) | length (u32) | ciphertext` (encrypt-then-MAC). `seq` is implicit: both
 * sides count frames, so a replayed, dropped or reordered frame fails its MAC.
 *
 * @module
 */

import { createCipheriv, createDecipheriv, createHmac, timingSafeEqual } from "node:crypto";

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

function macOf(keys: DirectionKeys, seq: bigint, header: Uint8Array, ct: Uint8Array): Uint8Array {
  const s = new Uint8Array(8);
  new DataView(s.buffer).setBigUint64(0, seq);
  return createHmac("sha256", keys.macKey).update(s).update(header).update(ct).digest();
}

/** Turns frame bodies into wire bytes, counting frames. */
export class FrameSealer {
  #keys: DirectionKeys | undefined;
  #seq = 0n;

  /** @param keys this direction's keys, or none for plain frames */
  constructor(keys?: DirectionKeys) {
    this.#keys = keys;
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
    const ct = c.update(body);
    c.final(); // releases the cipher's resource; a stream cipher has no tail
    out.set(ct, LENGTH_BYTES);
    out.set(macOf(keys, seq, out.subarray(0, LENGTH_BYTES), ct), LENGTH_BYTES + body.length);
    return out;
  }
}

/** Turns wire bytes into frame bodies, checking length and MAC. */
export class FrameOpener {
  #keys: DirectionKeys | undefined;
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
      const header = this.#buf.subarray(off, off + LENGTH_BYTES);
      const body = this.#buf.subarray(off + LENGTH_BYTES, off + LENGTH_BYTES + n);
      out.push(this.#open(header, body, off + LENGTH_BYTES + n));
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

  #open(header: Uint8Array, body: Uint8Array, macAt: number): Uint8Array {
    const keys = this.#keys;
    if (!keys) return body.slice();
    const seq = this.#seq++;
    const want = macOf(keys, seq, header, body);
    const got = this.#buf.subarray(macAt, macAt + MAC_BYTES);
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
