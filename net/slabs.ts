/**
 * Small byte arrays carved from shared slabs: a fresh `Uint8Array` costs about 1 µs here
 * whatever its size, a view into a slab a tenth of that. Outgoing frames and the copies a
 * batched channel send takes both come from here.
 *
 * @module
 */

/** Memory carved from shared 64 KiB slabs; a slab is freed when the last view into it is. */
export class Slabs {
  /** Bytes per slab. */
  static readonly SLAB_BYTES = 64 * 1024;
  /** Larger requests get arrays of their own. */
  static readonly MAX_CARVE = 4096;
  #slab = new ArrayBuffer(0);
  #used = 0;

  /**
   * `n` fresh bytes.
   *
   * @param n the size
   * @returns a view of a slab, or a fresh array above {@linkcode Slabs.MAX_CARVE}
   */
  alloc(n: number): Uint8Array {
    if (n > Slabs.MAX_CARVE) return new Uint8Array(n);
    if (this.#used + n > this.#slab.byteLength) {
      this.#slab = new ArrayBuffer(Slabs.SLAB_BYTES);
      this.#used = 0;
    }
    const out = new Uint8Array(this.#slab, this.#used, n);
    this.#used += (n + 7) & ~7;
    return out;
  }

  /**
   * A copy of `b`.
   *
   * @param b the bytes
   * @returns them, in memory of their own or of a slab
   */
  copy(b: Uint8Array): Uint8Array {
    const out = this.alloc(b.length);
    out.set(b);
    return out;
  }
}
