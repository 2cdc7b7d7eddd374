/**
 * Retained output of a process or container stream, for any number of readers.
 *
 * The buffer keeps the newest `boundBytes` of the stream. Each reader starts at the
 * oldest retained byte and reads at its own pace. While readers are attached, the
 * writer waits rather than drop a byte some reader has not read (the process is paced
 * by the slowest reader); with no reader attached, the oldest bytes are dropped and
 * counted. Readers never consume: a reader that dies loses nothing for the next one.
 *
 * Offsets are absolute stream positions: the buffer holds `[start, end)`.
 *
 * @module
 */

/** Default bytes retained per stream: 4 MiB. */
export const DEFAULT_OUTPUT_BOUND_BYTES = 4 * 1024 * 1024;

/** A reader's view of the buffer. */
export interface OutputReader {
  /** Bytes dropped before this reader attached (the oldest retained offset then). */
  readonly droppedBefore: number;
  /**
   * The next bytes, waiting for some if none are there; `null` at the end of the stream.
   *
   * @param signal stops waiting
   */
  read(signal?: AbortSignal): Promise<Uint8Array | null>;
  /** Detach; the writer no longer waits for this reader. */
  close(): void;
}

/** One stream's retained output. */
export class OutputBuffer {
  #bound: number;
  #chunks: Uint8Array[] = [];
  #start = 0;
  #end = 0;
  #closed = false;
  #readers = new Set<{ pos: number }>();
  #dataWaiters = new Set<() => void>();
  #roomWaiters = new Set<() => void>();

  /** @param boundBytes the most bytes retained; at least 1 */
  constructor(boundBytes: number = DEFAULT_OUTPUT_BOUND_BYTES) {
    this.#bound = Math.max(1, boundBytes);
  }

  /** Bytes dropped so far (never reached any reader). */
  get droppedBytes(): number {
    return this.#start;
  }

  /** Bytes written so far. */
  get writtenBytes(): number {
    return this.#end;
  }

  /** Bytes held now. */
  get retainedBytes(): number {
    return this.#end - this.#start;
  }

  /** Readers attached now. */
  get readerCount(): number {
    return this.#readers.size;
  }

  /** Whether the stream has ended. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Append bytes; waits while that would drop bytes an attached reader has not read.
   *
   * @param chunk the bytes
   */
  async write(chunk: Uint8Array): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      const room = this.#room();
      if (room <= 0) {
        await new Promise<void>((r) => this.#roomWaiters.add(r));
        continue;
      }
      const n = Math.min(room, chunk.length - off);
      this.#append(chunk.subarray(off, off + n));
      off += n;
    }
  }

  /** End the stream: readers get what remains, then the end. */
  close(): void {
    this.#closed = true;
    this.#wake(this.#dataWaiters);
    this.#wake(this.#roomWaiters);
  }

  /**
   * Attach a reader at the oldest retained byte.
   *
   * @returns the reader
   */
  reader(): OutputReader {
    const r = { pos: this.#start };
    this.#readers.add(r);
    const droppedBefore = this.#start;
    const read = async (signal?: AbortSignal): Promise<Uint8Array | null> => {
      for (;;) {
        if (!this.#readers.has(r)) return null;
        if (r.pos < this.#start) r.pos = this.#start; // cannot happen while attached
        if (r.pos < this.#end) {
          const out = this.#slice(r.pos);
          r.pos += out.length;
          this.#wake(this.#roomWaiters);
          return out;
        }
        if (this.#closed) return null;
        signal?.throwIfAborted();
        await new Promise<void>((resolve, reject) => {
          const done = () => {
            signal?.removeEventListener("abort", onAbort);
            resolve();
          };
          const onAbort = () => {
            this.#dataWaiters.delete(done);
            reject(signal!.reason);
          };
          this.#dataWaiters.add(done);
          signal?.addEventListener("abort", onAbort, { once: true });
        });
      }
    };
    return {
      droppedBefore,
      read,
      close: () => {
        this.#readers.delete(r);
        this.#wake(this.#roomWaiters);
      },
    };
  }

  /** How many bytes may be appended now without dropping unread bytes. */
  #room(): number {
    if (this.#closed) return Infinity; // a closed stream takes nothing more; see #append
    let slowest = Infinity;
    for (const r of this.#readers) slowest = Math.min(slowest, r.pos);
    if (slowest === Infinity) return Infinity; // no reader: drop freely
    return slowest + this.#bound - this.#end;
  }

  #append(bytes: Uint8Array): void {
    if (this.#closed || bytes.length === 0) return;
    this.#chunks.push(bytes); // owned: callers pass fresh chunks read from a pipe
    this.#end += bytes.length;
    // Trim to the bound: only bytes every attached reader has read (room() ensured it).
    let excess = this.#end - this.#start - this.#bound;
    while (excess > 0) {
      const first = this.#chunks[0];
      if (first.length <= excess) {
        this.#chunks.shift();
        this.#start += first.length;
        excess -= first.length;
      } else {
        this.#chunks[0] = first.subarray(excess);
        this.#start += excess;
        excess = 0;
      }
    }
    this.#wake(this.#dataWaiters);
  }

  /** Bytes from absolute offset `pos` to the end of the chunk that holds it. */
  #slice(pos: number): Uint8Array {
    let at = this.#start;
    for (const c of this.#chunks) {
      if (pos < at + c.length) return c.subarray(pos - at);
      at += c.length;
    }
    return new Uint8Array(0);
  }

  #wake(set: Set<() => void>): void {
    const fns = [...set];
    set.clear();
    for (const f of fns) f();
  }
}
