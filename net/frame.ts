/**
 * The frame codec: bytes in, whole frames out. It never touches a socket.
 *
 * A frame on the wire is `length (u32, big-endian) | body | mac`. Without keys the body
 * is plain and there is no MAC (loopback-only mode). With keys the body is
 * ChaCha20 (RFC 8439) ciphertext under the direction's encryption key, and the MAC is
 * HMAC-SHA256 under the direction's MAC key over `length (u32) | ciphertext | seq (u64)`
 * (encrypt-then-MAC). `seq` is implicit: both sides count frames, so a replayed, dropped
 * or reordered frame fails its MAC.
 *
 * The bodies of one direction are encrypted as one continuous ChaCha20 key stream: the
 * first body takes the first bytes of the stream, the next body the bytes after them,
 * and so on (both sides see the same frames in the same order, so they stay in step).
 * That needs one cipher set-up per connection instead of one per frame. The stream's
 * 96-bit nonce is `epoch (u64) | 0 (u32)` with block counter 0.
 *
 * The epoch rule is decided per whole body, never per piece of one: when a body of `n`
 * bytes would take the current epoch past {@link EPOCH_BYTES} (a transport setting,
 * `epochBytes`) of key stream, both sides move to the next epoch before that body, and
 * the whole body is then encrypted in that one epoch. A body larger than a whole epoch
 * (only with the tiny epochs of tests) fills an epoch of its own, past the size. The
 * sealer may encrypt a body in several pieces ({@linkcode FrameSealer.sealParts}), but it
 * takes the epoch decision once for the whole body, as the opener does, so both sides
 * agree whatever the split. No (key, nonce, counter) block is ever used twice, and since
 * an epoch holds at most `EPOCH_BYTES` plus one body, the 32-bit block counter (256 GiB)
 * never wraps. The MAC input is contiguous (the sequence number is written where the
 * MAC then goes) and the HMAC's inner and outer pad states are computed once per key,
 * so each frame costs two hash updates instead of an HMAC set-up and three updates.
 *
 * Allocation is the other cost that matters per frame: under Deno a new `Uint8Array`
 * costs about 1 µs whatever its size. Digests are therefore taken as hex and decoded
 * into scratch memory, the MAC check is a constant-time loop over that memory, and small
 * outgoing frames are carved from shared slabs. Together this halved the cost of sealing
 * and opening a 100-byte frame (11 → 5 µs and 17 → 5 µs here).
 *
 * Keyed codecs use `node:crypto`, which loads only on demand: make them after
 * `loadNodeCrypto()` (`node_crypto.ts`) has finished; the handshake does that. Unkeyed
 * ones need nothing.
 *
 * @module
 */

import type { Cipheriv, Hash } from "node:crypto";
import { nodeCrypto } from "./node_crypto.ts";
import { Slabs } from "./slabs.ts";

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

/**
 * Key stream bytes one nonce (epoch) covers before both sides move to the next: 64 GiB,
 * a quarter of what ChaCha20's 32-bit block counter allows.
 */
export const EPOCH_BYTES = 2 ** 36;

/** OpenSSL's ChaCha20 IV: 32-bit block counter (0), then the 96-bit nonce. */
function counterBlock(epoch: bigint): Uint8Array {
  const iv = new Uint8Array(16);
  new DataView(iv.buffer).setBigUint64(4, epoch);
  return iv;
}

/**
 * One direction's ChaCha20 key stream, applied to bodies in order (encryption and
 * decryption are the same XOR).
 */
class KeyStream {
  #key: Uint8Array;
  #epoch = 0n;
  #used = 0;
  #cipher: Cipheriv | undefined;
  #closed = false;
  #epochBytes: number;

  constructor(key: Uint8Array, epochBytes: number) {
    this.#key = key;
    this.#epochBytes = epochBytes;
  }

  /**
   * Start a body of `n` bytes: the one place the epoch rule is decided (see the module
   * doc). Call once per body, before its first byte is encrypted, on both sides.
   */
  begin(n: number): void {
    if (this.#closed) throw new Error("The frame codec is closed");
    if (n === 0) return;
    if (!this.#cipher || this.#used + n > this.#epochBytes) {
      if (this.#cipher) this.#epoch++;
      this.#release();
      this.#cipher = nodeCrypto().createCipheriv(CIPHER, this.#key, counterBlock(this.#epoch));
      this.#used = 0;
    }
  }

  /** XOR the next `src.length` key stream bytes into `dst` at `at`. */
  apply(src: Uint8Array, dst: Uint8Array, at: number): void {
    if (src.length > 0) dst.set(this.xor(src), at);
  }

  /**
   * `src` XOR the next `src.length` key stream bytes, in new memory. Only within a body
   * started with {@linkcode KeyStream.begin}: this never changes the epoch.
   */
  xor(src: Uint8Array): Uint8Array {
    if (this.#closed) throw new Error("The frame codec is closed");
    if (src.length === 0) return new Uint8Array(0);
    if (!this.#cipher) throw new Error("Key stream used outside a body");
    this.#used += src.length;
    const b = this.#cipher.update(src);
    // A plain view, not the node Buffer: Buffer's slice() shares memory, Uint8Array's copies.
    return new Uint8Array(b.buffer, b.byteOffset, b.length);
  }

  /** Release the cipher's native resource. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#release();
  }

  #release(): void {
    const c = this.#cipher;
    this.#cipher = undefined;
    c?.final(); // a stream cipher has no tail; final() frees the context
  }
}

const SEQ_BYTES = 8;
/** The reused buffer for large frames starts this big (a full coalesced frame and more). */
const SCRATCH_BYTES = 300 * 1024;
/** Body parts from this size on are encrypted on their own rather than gathered first. */
const DIRECT_PART_BYTES = 4096;
const HMAC_BLOCK_BYTES = 64;

/** HMAC-SHA256 (RFC 2104) with the key's pad states hashed once. */
class Hmac {
  #inner: Hash;
  #outer: Hash;
  #innerDigest = new Uint8Array(MAC_BYTES);

  constructor(key: Uint8Array) {
    const { createHash } = nodeCrypto();
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

  /**
   * Write the MAC of `data` into `out` at `at`. The digests are taken as hex: Deno's
   * node:crypto copies a binary digest into a new Buffer (two allocations of about 1 µs
   * each), while its hex digest is one string that decodes here without allocating.
   */
  digestInto(data: Uint8Array, out: Uint8Array, at: number): void {
    hexInto(this.#inner.copy().update(data).digest("hex"), this.#innerDigest, 0);
    hexInto(this.#outer.copy().update(this.#innerDigest).digest("hex"), out, at);
  }
}

/** Nibble values of the ASCII hex digits, by char code. */
const NIBBLE = (() => {
  const t = new Uint8Array(128);
  for (let i = 0; i < 16; i++) t["0123456789abcdef".charCodeAt(i)] = i;
  return t;
})();

/** Decode lower-case hex (as node:crypto prints it) into `out` at `at`. */
function hexInto(hex: string, out: Uint8Array, at: number): void {
  for (let i = 0, j = at; i < hex.length; i += 2, j++) {
    out[j] = (NIBBLE[hex.charCodeAt(i)] << 4) | NIBBLE[hex.charCodeAt(i + 1)];
  }
}

/** Compare two equally long arrays in time independent of where they differ. */
function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/**
 * Write the MAC of the frame in `buf[at .. at + LENGTH_BYTES + n)` into `out` at `outAt`,
 * computed over that and the sequence number written just after it (where the MAC goes).
 */
function macInto(
  mac: Hmac,
  seq: bigint,
  buf: Uint8Array,
  at: number,
  n: number,
  out: Uint8Array,
  outAt: number,
): void {
  const end = at + LENGTH_BYTES + n;
  new DataView(buf.buffer, buf.byteOffset + end, SEQ_BYTES).setBigUint64(0, seq);
  mac.digestInto(buf.subarray(at, end + SEQ_BYTES), out, outAt);
}

/** Turns frame bodies into wire bytes, counting frames. */
export class FrameSealer {
  #stream: KeyStream | undefined;
  #mac: Hmac | undefined;
  #seq = 0n;
  #slabs = new Slabs();
  #scratch = new Uint8Array(0);

  /**
   * @param keys this direction's keys, or none for plain frames
   * @param epochBytes key stream bytes per nonce (tests make it small)
   */
  constructor(keys?: DirectionKeys, epochBytes: number = EPOCH_BYTES) {
    this.#stream = keys ? new KeyStream(keys.encKey, epochBytes) : undefined;
    this.#mac = keys ? new Hmac(keys.macKey) : undefined;
  }

  /** Release the cipher; the sealer must not be used after. Idempotent. */
  close(): void {
    this.#stream?.close();
  }

  /** Same as {@linkcode FrameSealer.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Seal one body.
   *
   * @param body the plaintext frame body
   * @returns the bytes to write
   */
  seal(body: Uint8Array): Uint8Array {
    return this.sealParts([body], body.length);
  }

  /**
   * Seal one body given in parts, as if they were joined: the same bytes as
   * `seal(join(parts))` without the join. Large parts are encrypted straight into the
   * frame; runs of small ones are gathered first, so that many small messages still cost
   * one cipher call.
   *
   * @param parts the plaintext body, in pieces
   * @param size the total length of the pieces
   * @param reuse let a large frame's bytes be overwritten by the next call that reuses
   *   too (the caller writes each frame out before sealing the next): a fresh buffer of
   *   that size costs more than sealing into it
   * @returns the bytes to write
   */
  sealParts(parts: Uint8Array[], size: number, reuse = false): Uint8Array {
    const stream = this.#stream;
    const macLen = stream ? MAC_BYTES : 0;
    const n = LENGTH_BYTES + size + macLen;
    let out: Uint8Array;
    if (reuse && n > Slabs.MAX_CARVE) {
      if (this.#scratch.length < n) this.#scratch = new Uint8Array(Math.max(n, SCRATCH_BYTES));
      out = this.#scratch.subarray(0, n);
    } else out = this.#slabs.alloc(n);
    new DataView(out.buffer, out.byteOffset, LENGTH_BYTES).setUint32(0, size);
    let at = LENGTH_BYTES;
    if (!stream) {
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      return out;
    }
    const seq = this.#seq++;
    stream.begin(size); // the epoch is decided for the whole body, as the opener does
    let run = at; // start of the small parts gathered, not yet encrypted
    for (const p of parts) {
      if (p.length < DIRECT_PART_BYTES) {
        out.set(p, at);
        at += p.length;
        continue;
      }
      if (run < at) stream.apply(out.subarray(run, at), out, run);
      stream.apply(p, out, at);
      at += p.length;
      run = at;
    }
    if (run < at) stream.apply(out.subarray(run, at), out, run);
    macInto(this.#mac!, seq, out, 0, size, out, LENGTH_BYTES + size);
    return out;
  }
}

/** Turns wire bytes into frame bodies, checking length and MAC. */
export class FrameOpener {
  #stream: KeyStream | undefined;
  #mac: Hmac | undefined;
  #maxFrameBytes: number;
  #seq = 0n;
  #buf = new Uint8Array(0);
  /** `#buf[#start, #end)`: bytes read that do not yet make a whole frame. */
  #start = 0;
  #end = 0;
  #got = new Uint8Array(MAC_BYTES);
  #want = new Uint8Array(MAC_BYTES);

  /**
   * @param keys this direction's keys, or none for plain frames
   * @param maxFrameBytes the largest body accepted
   * @param epochBytes key stream bytes per nonce (tests make it small)
   */
  constructor(
    keys: DirectionKeys | undefined,
    maxFrameBytes: number,
    epochBytes: number = EPOCH_BYTES,
  ) {
    this.#stream = keys ? new KeyStream(keys.encKey, epochBytes) : undefined;
    this.#mac = keys ? new Hmac(keys.macKey) : undefined;
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Release the cipher; the opener must not be used after. Idempotent. */
  close(): void {
    this.#stream?.close();
  }

  /** Same as {@linkcode FrameOpener.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Bytes buffered that do not yet make a whole frame. */
  get pendingBytes(): number {
    return this.#end - this.#start;
  }

  /**
   * Feed bytes; get every frame they complete.
   *
   * @param chunk bytes as read from the socket, any size
   * @returns the bodies of the frames completed, in order
   * @throws {FrameError} on an oversized length or a bad MAC
   */
  push(chunk: Uint8Array): Uint8Array[] {
    this.space(chunk.length).set(chunk);
    return this.commit(chunk.length);
  }

  /**
   * Memory to read the socket into, at least `min` bytes, after the bytes held: reading
   * there instead of into a buffer of one's own saves {@linkcode FrameOpener.push} a
   * copy. Valid until the next call on this opener; follow it with `commit`.
   *
   * @param min the fewest bytes wanted
   * @returns the free memory
   */
  space(min: number): Uint8Array {
    if (this.#buf.length - this.#end >= min) return this.#buf.subarray(this.#end);
    const held = this.#end - this.#start;
    if (this.#buf.length - held >= min && held <= this.#start) {
      this.#buf.copyWithin(0, this.#start, this.#end); // cheap: less held than freed
    } else {
      const next = new Uint8Array(Math.max(held + min, this.#buf.length * 2, 4096));
      next.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = next;
    }
    this.#start = 0;
    this.#end = held;
    return this.#buf.subarray(this.#end);
  }

  /**
   * Take `n` bytes just read into {@linkcode FrameOpener.space}.
   *
   * @param n bytes read
   * @returns the bodies of the frames completed, in order
   * @throws {FrameError} on an oversized length or a bad MAC
   */
  commit(n: number): Uint8Array[] {
    this.#end += n;
    const out: Uint8Array[] = [];
    const macLen = this.#stream ? MAC_BYTES : 0;
    let off = this.#start;
    while (this.#end - off >= LENGTH_BYTES) {
      const view = new DataView(this.#buf.buffer, this.#buf.byteOffset + off, LENGTH_BYTES);
      const n = view.getUint32(0);
      if (n > this.#maxFrameBytes) {
        throw new FrameError(
          "oversized",
          `Reading frame failed: length ${n} exceeds the limit of ${this.#maxFrameBytes} bytes`,
        );
      }
      const total = LENGTH_BYTES + n + macLen;
      if (this.#end - off < total) break;
      out.push(this.#open(off, n));
      off += total;
    }
    this.#start = off;
    if (this.#start === this.#end) this.#start = this.#end = 0; // nothing held: start over
    return out;
  }

  /**
   * Declare the end of the byte stream.
   *
   * @throws {FrameError} `truncated` when a partial frame is left over
   */
  end(): void {
    if (this.#end > this.#start) {
      throw new FrameError(
        "truncated",
        `Reading frame failed: stream ended inside a frame with ${
          this.#end - this.#start
        } bytes buffered`,
      );
    }
  }

  /** Check and decrypt the frame at `#buf[at]` with an `n`-byte body. */
  #open(at: number, n: number): Uint8Array {
    const stream = this.#stream;
    const body = this.#buf.subarray(at + LENGTH_BYTES, at + LENGTH_BYTES + n);
    if (!stream) return body.slice();
    const seq = this.#seq++;
    const macAt = at + LENGTH_BYTES + n;
    const got = this.#got;
    got.set(this.#buf.subarray(macAt, macAt + MAC_BYTES)); // before the seq overwrites it
    macInto(this.#mac!, seq, this.#buf, at, n, this.#want, 0);
    if (!constantTimeEqual(this.#want, got)) {
      throw new FrameError("bad mac", `Reading frame ${seq} failed: MAC mismatch`);
    }
    stream.begin(n);
    return stream.xor(body);
  }
}
