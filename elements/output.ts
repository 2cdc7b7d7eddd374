/**
 * Retained output of a process or container stream, for any number of readers.
 *
 * The buffer keeps the newest `boundBytes` of the stream. Each reader starts at the
 * oldest retained byte and reads at its own pace. While readers are attached, the
 * writer waits rather than drop a byte some reader has not read (the process is paced
 * by the slowest reader); with no reader attached, the oldest bytes are dropped and
 * counted. Readers never consume: a reader that dies loses nothing for the next one.
 *
 * A new buffer may be *held*: until its first reader attaches, or until the hold time
 * has passed, the writer waits when the buffer is full instead of dropping. That closes
 * the gap between starting a process and attaching to its output (`circuit mkproc`, then
 * `circuit stdout`), in which a fast writer would otherwise lose its first bytes; after
 * the hold, a stream nobody reads no longer holds its process back.
 *
 * Offsets are absolute stream positions: the buffer holds `[start, end)`. The bytes live
 * in one ring buffer that grows up to the bound and is then reused, so a stream nobody
 * reads costs no memory beyond the bound, not even garbage awaiting collection: bytes
 * are copied in (writers may reuse their buffers). Readers get views into the ring, each
 * kept intact until that reader reads again: a reader's bytes are handed on (packed into
 * a frame) without a copy of their own.
 *
 * @module
 */

/** Default bytes retained per stream: 4 MiB. */
export const DEFAULT_OUTPUT_BOUND_BYTES = 4 * 1024 * 1024;

/** Most bytes one read returns. */
const MAX_READ_BYTES = 64 * 1024;

/** Smallest ring allocated, so that small outputs do not regrow it byte by byte. */
const MIN_RING_BYTES = 16 * 1024;

/** A reader's view of the buffer. */
export interface OutputReader {
  /** Bytes dropped before this reader attached (the oldest retained offset then). */
  readonly droppedBefore: number;
  /**
   * The next bytes, waiting for some if none are there; `null` at the end of the stream.
   * They are a view into the buffer, valid until this reader's next `read` or `close`
   * (copy them to keep them longer): handing them on costs no copy.
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
  #ring = new Uint8Array(0);
  #head = 0; // ring index of the byte at #start
  #start = 0;
  #end = 0;
  #closed = false;
  /** `pos`: the next byte to read; `pinned`: the oldest byte its last view still shows. */
  #readers = new Set<{ pos: number; pinned: number }>();
  #dataWaiters = new Set<() => void>();
  #roomWaiters = new Set<() => void>();
  #idleWaiters = new Set<() => void>();
  #held = false;
  #holdTimer: number | undefined;

  /**
   * @param boundBytes the most bytes retained; at least 1
   * @param holdMs how long a full buffer makes the writer wait rather than drop while no
   *   reader has attached yet; 0 for never
   */
  constructor(boundBytes: number = DEFAULT_OUTPUT_BOUND_BYTES, holdMs = 0) {
    this.#bound = Math.max(1, boundBytes);
    if (holdMs > 0) {
      this.#held = true;
      const timer = setTimeout(() => this.#release(), holdMs) as unknown as number;
      Deno.unrefTimer(timer); // the process keeps the server busy, not this
      this.#holdTimer = timer;
    }
  }

  /** Whether the writer still waits for a first reader rather than drop. */
  get held(): boolean {
    return this.#held;
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
   * Resolves once no reader is attached (at once when none is).
   *
   * @returns when the last attached reader has closed
   */
  idle(): Promise<void> {
    if (this.#readers.size === 0) return Promise.resolve();
    return new Promise<void>((r) => this.#idleWaiters.add(r));
  }

  /**
   * Append bytes (copied); waits while that would drop bytes an attached reader has not
   * read.
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
    this.#release();
    this.#wake(this.#dataWaiters);
    this.#wake(this.#roomWaiters);
  }

  /**
   * Attach a reader at the oldest retained byte.
   *
   * @returns the reader
   */
  reader(): OutputReader {
    const r = { pos: this.#start, pinned: this.#start };
    this.#readers.add(r);
    this.#release(); // a reader paces the writer from now on
    const droppedBefore = this.#start;
    const read = async (signal?: AbortSignal): Promise<Uint8Array | null> => {
      if (r.pinned < r.pos) {
        r.pinned = r.pos; // the previous view is released
        this.#wake(this.#roomWaiters);
      }
      for (;;) {
        if (!this.#readers.has(r)) return null;
        if (r.pos < this.#start) r.pos = r.pinned = this.#start; // cannot happen while attached
        if (r.pos < this.#end) {
          const out = this.#view(r.pos);
          r.pos += out.length;
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
        if (this.#readers.size === 0) this.#wake(this.#idleWaiters);
      },
    };
  }

  /** How many bytes may be appended now without dropping unread bytes. */
  #room(): number {
    if (this.#closed) return Infinity; // a closed stream takes nothing more; see #append
    let slowest = Infinity;
    for (const r of this.#readers) slowest = Math.min(slowest, r.pinned);
    // No reader: wait for the first one while held, else drop freely.
    if (slowest === Infinity) return this.#held ? this.#start + this.#bound - this.#end : Infinity;
    return slowest + this.#bound - this.#end;
  }

  /** End the hold: the writer no longer waits for a first reader. */
  #release(): void {
    if (!this.#held) return;
    this.#held = false;
    clearTimeout(this.#holdTimer);
    this.#wake(this.#roomWaiters);
  }

  #append(bytes: Uint8Array): void {
    if (this.#closed || bytes.length === 0) return;
    const n = bytes.length;
    const retained = this.#end - this.#start;
    if (n >= this.#bound) {
      // Only the newest bound bytes survive (room() allowed it: nobody needs the rest).
      if (this.#ring.length < this.#bound) this.#ring = new Uint8Array(this.#bound);
      this.#ring.set(bytes.subarray(n - this.#bound));
      this.#head = 0;
      this.#end += n;
      this.#start = this.#end - this.#bound;
    } else {
      this.#grow(Math.min(this.#bound, retained + n));
      const cap = this.#ring.length;
      const at = (this.#head + retained) % cap;
      const first = Math.min(n, cap - at);
      this.#ring.set(bytes.subarray(0, first), at);
      this.#ring.set(bytes.subarray(first), 0);
      this.#end += n;
      // Past capacity (then equal to the bound) the oldest bytes were overwritten:
      // every attached reader had read them (room() ensured it).
      const over = retained + n - cap;
      if (over > 0) {
        this.#head = (this.#head + over) % cap;
        this.#start += over;
      }
    }
    this.#wake(this.#dataWaiters);
  }

  /** Make the ring hold at least `need` bytes (never more than the bound). */
  #grow(need: number): void {
    const cap = this.#ring.length;
    if (need <= cap) return;
    const ring = new Uint8Array(Math.min(this.#bound, Math.max(need, cap * 2, MIN_RING_BYTES)));
    const held = this.#end - this.#start;
    const first = Math.min(held, cap - this.#head);
    ring.set(this.#ring.subarray(this.#head, this.#head + first), 0);
    ring.set(this.#ring.subarray(0, held - first), first);
    this.#ring = ring;
    this.#head = 0;
  }

  /** The bytes from absolute offset `pos` on, up to the ring's wrap point (a view). */
  #view(pos: number): Uint8Array {
    const cap = this.#ring.length;
    const at = (this.#head + (pos - this.#start)) % cap;
    const len = Math.min(this.#end - pos, cap - at, MAX_READ_BYTES);
    return this.#ring.subarray(at, at + len);
  }

  #wake(set: Set<() => void>): void {
    const fns = [...set];
    set.clear();
    for (const f of fns) f();
  }
}
