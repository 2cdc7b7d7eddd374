/**
 * A message held whole on the server: in memory while it is small and the server's
 * memory budget for messages has room, else in a file, so a large message never sits in
 * memory, many messages together never hold more than the budget, and a partial one is
 * never delivered.
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";

/** Bytes of one message kept in memory before it moves to a file: 1 MiB. */
export const SPOOL_MEMORY_BYTES = 1024 * 1024;
/**
 * Bytes of channel messages that all spools of this process (one server) hold in memory
 * at once: 32 MiB. A message that would take the total past it goes to a file instead.
 */
export const SPOOL_MEMORY_BUDGET_BYTES = 32 * 1024 * 1024;
/** Messages up to this size can be handed over whole ({@linkcode Spool.small}). */
export const SMALL_MESSAGE_BYTES = 60 * 1024;

/** Bytes the spools hold in memory now, against {@linkcode SPOOL_MEMORY_BUDGET_BYTES}. */
let memoryHeld = 0;

/**
 * Bytes of channel messages held in memory by every spool of this process.
 *
 * @returns the bytes
 */
export function spoolMemoryBytes(): number {
  return memoryHeld;
}

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

/**
 * Whether an error is a full disk (or a full quota).
 *
 * @param err what was thrown
 * @returns true for ENOSPC and EDQUOT
 */
export function isDiskFull(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return code === "ENOSPC" || code === "EDQUOT" || /\(os error (28|122)\)/.test(err.message);
}

/**
 * The error for an operation refused because the server's disk is full.
 *
 * @param action what failed, e.g. `Sending to /X…/c`
 * @param cause the file system's error
 * @returns a `busy` that says so
 */
export function diskFull(action: string, cause?: unknown): CircuitError {
  return new CircuitError("busy", `${action} failed: the server's disk is full (ENOSPC)`, {
    cause,
  });
}

/** A complete or filling message. */
export class Spool {
  #dir: string;
  #limit: number;
  #chunks: Uint8Array[] = [];
  #size = 0;
  /** Bytes of this message counted in the process's memory budget. */
  #charged = 0;
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

  /** Whether the message is held in memory (not in a file). */
  get inMemory(): boolean {
    return this.#path === null;
  }

  /**
   * Fill the spool from a stream to its end.
   *
   * @param from the sender's bytes
   * @throws {CircuitError} `bad request` past the size limit; the file system's error
   *   (see {@linkcode isDiskFull}) when the message cannot be written; the stream's error
   *   if it breaks
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
        if (!this.#file && !this.#keep(chunk.length)) await this.#toFile();
        if (this.#file) await writeAll(this.#file, chunk);
        else this.#chunks.push(chunk);
      }
      // A message in a file holds no descriptor while it waits: `drainTo` opens it again.
      this.#closeFile();
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
   * @throws {CircuitError} `bad request` past the size limit; the file system's error
   *   when the message cannot be written
   */
  async fillWhole(chunks: Uint8Array[]): Promise<void> {
    const size = this.#take(chunks);
    if (!this.#keep(size)) {
      await this.#toFile();
      this.#closeFile();
    }
  }

  /**
   * Fill the spool with a whole small message: in memory when the budget has room, else
   * written to a file at once (synchronously: it is small).
   *
   * @param chunks the message
   * @throws {CircuitError} `bad request` past the size limit; the file system's error
   *   when the message cannot be written
   */
  fillMemory(chunks: Uint8Array[]): void {
    const size = this.#take(chunks);
    if (!this.#keep(size)) this.#toFileSync();
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
    this.#uncharge();
    this.#closeFile();
    if (this.#path) {
      try {
        Deno.removeSync(this.#path);
      } catch { /* gone */ }
    }
    this.#path = null;
  }

  /** Hold a whole message's chunks (in memory, not yet counted); its size. */
  #take(chunks: Uint8Array[]): number {
    let size = 0;
    for (const c of chunks) size += c.length;
    if (size > this.#limit) {
      throw tooLarge(this.#limit);
    }
    this.#size = size;
    this.#chunks = chunks;
    return size;
  }

  /**
   * Count `n` more bytes of this message in memory, if the message stays within
   * {@linkcode SPOOL_MEMORY_BYTES} and the process within its budget.
   */
  #keep(n: number): boolean {
    if (this.#charged + n > SPOOL_MEMORY_BYTES) return false;
    if (memoryHeld + n > SPOOL_MEMORY_BUDGET_BYTES) return false;
    memoryHeld += n;
    this.#charged += n;
    return true;
  }

  #uncharge(): void {
    memoryHeld -= this.#charged;
    this.#charged = 0;
  }

  #closeFile(): void {
    try {
      this.#file?.close();
    } catch { /* closed */ }
    this.#file = null;
  }

  async #toFile(): Promise<void> {
    await Deno.mkdir(this.#dir, { recursive: true });
    this.#path = await Deno.makeTempFile({ dir: this.#dir, prefix: "msg-" });
    this.#file = await Deno.open(this.#path, { write: true });
    for (const c of this.#chunks) await writeAll(this.#file, c);
    this.#chunks = [];
    this.#uncharge();
  }

  #toFileSync(): void {
    Deno.mkdirSync(this.#dir, { recursive: true });
    this.#path = Deno.makeTempFileSync({ dir: this.#dir, prefix: "msg-" });
    using f = Deno.openSync(this.#path, { write: true });
    for (const c of this.#chunks) {
      let off = 0;
      while (off < c.length) off += f.writeSync(c.subarray(off));
    }
    this.#chunks = [];
    this.#uncharge();
  }
}

async function writeAll(f: Deno.FsFile, b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.length) off += await f.write(b.subarray(off));
}
