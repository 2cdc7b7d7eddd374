/**
 * The mux's outgoing queue: messages wait here while a frame is being written, and every
 * message queued meanwhile goes into the next frame, so the per-frame MAC is paid once
 * for many. Large DATA bytes are not copied into a message: they go into the frame as
 * they are, after a header encoded apart.
 *
 * @module
 */

import { encodeDataHead } from "./codec.ts";

/**
 * DATA bytes from this size on go into the frame as they are, after a header encoded
 * apart, rather than being copied into a packed message first (the same bytes on the
 * wire).
 */
export const DIRECT_DATA_BYTES = 4096;

/** Most promise turns the writer waits for more messages before cutting a frame. */
export const SETTLE_TURNS = 32;
/** Turns without a new message after which the writer stops waiting. */
export const SETTLE_QUIET_TURNS = 6;

/** A DATA message queued with its bytes uncopied. */
interface DirectData {
  /** The message's msgpack bytes up to the bin payload. */
  head: Uint8Array;
  /** The payload, not copied: its owner waits for `sealed` before reusing it. */
  body: Uint8Array;
  /** Called once the body has been sealed into a frame (or dropped at close). */
  sealed: () => void;
}

/** An outbox entry: a packed message, or a DATA message in two parts. */
type Outgoing = Uint8Array | DirectData;

function outgoingBytes(e: Outgoing): number {
  return e instanceof Uint8Array ? e.length : e.head.length + e.body.length;
}

/** What an {@linkcode Outbox} writes to. */
export interface OutboxOptions {
  /**
   * Writes one frame whose body is `parts` one after another, `size` bytes in all; the
   * parts are consumed before it returns (see `MuxOptions.writeFrame`).
   */
  writeFrame(parts: Uint8Array[], size: number): Promise<void>;
  /** Most bytes of messages joined into one frame (one larger message goes alone). */
  coalesceBytes: number;
  /** A write failed: the outbox stops; the owner closes it. */
  onWriteError(err: unknown): void;
}

/** The outgoing queue of one connection. */
export class Outbox {
  /** Frames written. */
  framesOut = 0;
  /** Messages queued. */
  messagesOut = 0;
  #o: OutboxOptions;
  #queue: Outgoing[] = [];
  #queued = 0;
  #pumping = false;
  #closed = false;
  /** Made when someone waits for the queue to drain. */
  #idle: PromiseWithResolvers<void> | undefined;

  /** @param options where frames go */
  constructor(options: OutboxOptions) {
    this.#o = options;
  }

  /** Bytes queued for writing. */
  get queuedBytes(): number {
    return this.#queued;
  }

  /**
   * Queue one encoded message.
   *
   * @param bytes the message
   */
  push(bytes: Uint8Array): void {
    this.#enqueue(bytes, bytes.length);
  }

  /**
   * Queue a DATA message without copying its bytes.
   *
   * @param id the call
   * @param bytes the chunk
   * @returns resolves once the bytes are sealed into a frame (or dropped at close)
   */
  pushData(id: number, bytes: Uint8Array): Promise<void> {
    return new Promise<void>((sealed) => {
      const head = encodeDataHead(id, bytes.length);
      this.#enqueue({ head, body: bytes, sealed }, head.length + bytes.length);
    });
  }

  /** Resolves once everything queued is written, or the outbox closed. */
  drained(): Promise<void> {
    if (!this.#pumping && this.#queue.length === 0) return Promise.resolve();
    return (this.#idle ??= Promise.withResolvers<void>()).promise;
  }

  /** Drop what is queued (uncopied bodies are their owners' again) and write no more. */
  close(): void {
    this.#closed = true;
    for (const e of this.#queue) if (!(e instanceof Uint8Array)) e.sealed();
    this.#queue = [];
    this.#queued = 0;
    if (!this.#pumping) this.#wakeIdle();
  }

  #enqueue(e: Outgoing, size: number): void {
    this.#queue.push(e);
    this.#queued += size;
    this.messagesOut++;
    if (!this.#pumping) {
      this.#pumping = true;
      queueMicrotask(() => this.#pump());
    }
  }

  async #pump(): Promise<void> {
    try {
      await this.#settle();
      while (this.#queue.length > 0 && !this.#closed) await this.#writeOne();
    } catch (err) {
      this.#o.onWriteError(err);
    } finally {
      this.#pumping = false;
      this.#wakeIdle();
    }
  }

  /** Cut one frame from the head of the queue and write it. */
  #writeOne(): Promise<void> {
    const max = this.#o.coalesceBytes;
    let n = 0, size = 0;
    while (n < this.#queue.length) {
      const b = outgoingBytes(this.#queue[n]);
      if (n > 0 && size + b > max) break;
      size += b;
      n++;
    }
    const parts: Uint8Array[] = [];
    const sealed: Array<() => void> = [];
    for (const e of this.#queue.splice(0, n)) {
      if (e instanceof Uint8Array) parts.push(e);
      else {
        parts.push(e.head, e.body);
        sealed.push(e.sealed);
      }
    }
    this.#queued -= size;
    this.framesOut++;
    try {
      return this.#o.writeFrame(parts, size);
    } finally {
      for (const f of sealed) f(); // sealed (or dropped): the bodies are their owners' again
    }
  }

  /**
   * Let the microtasks already under way queue their messages before the first frame is
   * cut: a stream's DATA and the END that follows it a few promise turns later, or a reply
   * and its stream's last bytes, then share one frame. Waits while the queue still grows,
   * at most {@linkcode SETTLE_TURNS} turns (well under a microsecond each); no timer, so no
   * event-loop turn is added.
   */
  async #settle(): Promise<void> {
    let seen = this.#queue.length, quiet = 0;
    for (let i = 0; i < SETTLE_TURNS && quiet < SETTLE_QUIET_TURNS; i++) {
      await undefined;
      if (this.#queue.length === seen) quiet++;
      else {
        seen = this.#queue.length;
        quiet = 0;
      }
    }
  }

  #wakeIdle(): void {
    if (this.#queue.length > 0 && !this.#closed) return;
    this.#idle?.resolve();
    this.#idle = undefined;
  }
}
