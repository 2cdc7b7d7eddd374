/**
 * A message held whole on the server: in memory up to a threshold, then in a file, so a
 * large message never sits in memory and a partial one is never delivered.
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";

/** Bytes kept in memory before a message moves to a file: 1 MiB. */
export const SPOOL_MEMORY_BYTES = 1024 * 1024;
/** Messages up to this size can be handed over whole ({@linkcode Spool.small}). */
export const SMALL_MESSAGE_BYTES = 60 * 1024;

/**
 * The error for a message over the size limit.
 *
 * @param limit the limit, in bytes
 * @returns a `bad request` that names it
 */
export function tooLarge(limit: number): CircuitError {
  return new CircuitError(
    "bad request",
    `Sending failed: the message exceeds the limit of ${limit} bytes`,
  );
}

/** A complete or filling message. */
export class Spool {
  #dir: string;
  #limit: number;
  #chunks: Uint8Array[] = [];
  #size = 0;
  #file: Deno.FsFile | null = null;
  #path: string | null = null;
  #reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  #canceled: Error | null = null;

  /**
   * @param dir where large messages are written
   * @param limitBytes the largest message accepted
   */
  constructor(dir: string, limitBytes: number) {
    this.#dir = dir;
    this.#limit = limitBytes;
  }

  /** Bytes held. */
  get size(): number {
    return this.#size;
  }

  /**
   * Fill the spool from a stream to its end.
   *
   * @param from the sender's bytes
   * @throws {CircuitError} `bad request` past the size limit; the stream's error if it breaks
   */
  async fill(from: ReadableStream<Uint8Array>): Promise<void> {
    const reader = from.getReader();
    this.#reader = reader;
    try {
      for (;;) {
        if (this.#canceled) throw this.#canceled;
        const { done, value: chunk } = await reader.read();
        // A canceled read reports done: that is not the end of the message.
        if (this.#canceled) throw this.#canceled;
        if (done) break;
        if (this.#size + chunk.length > this.#limit) {
          throw tooLarge(this.#limit);
        }
        this.#size += chunk.length;
        if (!this.#file && this.#size > SPOOL_MEMORY_BYTES) await this.#toFile();
        if (this.#file) await writeAll(this.#file, chunk);
        else this.#chunks.push(chunk);
      }
    } catch (err) {
      await reader.cancel(err).catch(() => {}); // the sender stops sending
      throw err;
    } finally {
      // The lock is kept: nobody else reads this stream, and releasing it costs an error
      // object (with its stack) per message.
      this.#reader = null;
    }
  }

  /**
   * Fill the spool from chunks already at hand (a message that came whole).
   *
   * @param chunks the message
   * @throws {CircuitError} `bad request` past the size limit
   */
  async fillWhole(chunks: Uint8Array[]): Promise<void> {
    this.fillMemory(chunks);
    if (this.#size > SPOOL_MEMORY_BYTES) await this.#toFile();
  }

  /**
   * Fill the spool with a whole message and keep it in memory, however large: for
   * messages known to be small.
   *
   * @param chunks the message
   * @throws {CircuitError} `bad request` past the size limit
   */
  fillMemory(chunks: Uint8Array[]): void {
    let size = 0;
    for (const c of chunks) size += c.length;
    if (size > this.#limit) {
      throw tooLarge(this.#limit);
    }
    this.#size = size;
    this.#chunks = chunks;
  }

  /**
   * The message as one array when it is held in memory and at most
   * {@linkcode SMALL_MESSAGE_BYTES}, else null (then use `drainTo`).
   *
   * @returns the bytes, or null
   */
  small(): Uint8Array | null {
    if (this.#path || this.#size > SMALL_MESSAGE_BYTES) return null;
    if (this.#chunks.length === 1) return this.#chunks[0];
    const out = new Uint8Array(this.#size);
    let at = 0;
    for (const c of this.#chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }

  /**
   * Stop a fill under way: it rejects with `err` and the rest of the stream is refused.
   *
   * @param err why
   */
  cancel(err: Error): void {
    this.#canceled ??= err;
    this.#reader?.cancel(err).catch(() => {});
  }

  /**
   * Write the whole message to a stream (which is left open).
   *
   * @param to the receiver's writer
   */
  async drainTo(to: WritableStreamDefaultWriter<Uint8Array>): Promise<void> {
    if (!this.#path) {
      for (const c of this.#chunks) await to.write(c);
      return;
    }
    using f = await Deno.open(this.#path, { read: true });
    const buf = new Uint8Array(64 * 1024);
    for (let n = await f.read(buf); n !== null; n = await f.read(buf)) {
      await to.write(buf.slice(0, n));
    }
  }

  /** Free memory and remove the file. */
  discard(): void {
    this.#chunks = [];
    try {
      this.#file?.close();
    } catch { /* closed */ }
    this.#file = null;
    if (this.#path) {
      try {
        Deno.removeSync(this.#path);
      } catch { /* gone */ }
    }
    this.#path = null;
  }

  async #toFile(): Promise<void> {
    await Deno.mkdir(this.#dir, { recursive: true });
    this.#path = await Deno.makeTempFile({ dir: this.#dir, prefix: "msg-" });
    this.#file = await Deno.open(this.#path, { write: true });
    for (const c of this.#chunks) await writeAll(this.#file, c);
    this.#chunks = [];
  }
}

async function writeAll(f: Deno.FsFile, b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.length) off += await f.write(b.subarray(off));
}
