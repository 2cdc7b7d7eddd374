/**
 * The channel element: Go-like channels between programs on any hosts.
 *
 * A message is the sender's whole byte stream. A sender is admitted only when the
 * channel has room (a free buffer slot, or for CAP 0 a waiting receiver); until then its
 * bytes stay behind the transport's flow control. An admitted message is spooled on the
 * server and becomes deliverable only once complete, so a sender that dies mid-stream
 * leaves nothing behind. A message is consumed only when its receiver acknowledges
 * having read all of it, so a receiver that dies consumes nothing.
 *
 * Batches (`sendMany`, `recvMany`) let a client that has many small operations under way
 * on one channel carry them in one call each way. They keep the same rules: each message
 * of a `sendMany` is admitted on its own, in order, exactly as a `send` of it would be;
 * a `recvMany` takes the messages that are ready (at least one, waiting for it like a
 * `recv`) and consumes them only when its receiver acknowledges the whole batch, so a
 * receiver that dies gives all of them back, in order.
 *
 * @module
 */

import { CircuitError, toWireError } from "../../net/errors.ts";
import type { Element, ElementCall, ElementContext, ElementKind } from "../element.ts";
import { deliver } from "../delivery.ts";
import { diskFull, isDiskFull, SMALL_MESSAGE_BYTES, Spool, tooLarge } from "../spool.ts";
import {
  BATCH_BYTES,
  BATCH_HEADER_BYTES,
  BATCH_MESSAGES,
  type SendManyReply,
} from "../../net/wire.ts";

/** The `peek` shape. */
export interface ChanPeek {
  /** Buffer capacity in messages. */
  Cap: number;
  /** Closed for sending. */
  Closed: boolean;
  /** Scrubbed. */
  Aborted: boolean;
  /** Completed sends. */
  NumSend: number;
  /** Completed deliveries. */
  NumRecv: number;
}

interface Waiter {
  /**
   * Resume the call; a sender is handed the spool reserved for its message. A batch of
   * senders is woken once per message, in order, and stays first in the queue until
   * its last message has a spool.
   */
  wake(spool?: Spool): void;
  fail(err: CircuitError): void;
  /** For a batch: spools it still wants after the next. */
  more?: number;
}

interface Message {
  spool: Spool;
  /** For CAP 0: resolves the sender once a receiver has taken the message. */
  taken?: () => void;
  /** For CAP 0: fails the waiting sender (scrub, or it left mid-delivery). */
  fail?: (err: CircuitError) => void;
  /** For CAP 0: the waiting sender's signal; a message whose sender left is withdrawn. */
  signal?: AbortSignal;
}

const closedError = () => new CircuitError("closed", "channel closed");
const abortedError = () => new CircuitError("aborted", "channel aborted");

/** A channel. */
export class ChanElement implements Element {
  /** `ls -l` kind. */
  readonly kind = "chan";
  #ctx: ElementContext;
  #cap: number;
  #closed = false;
  #aborted = false;
  #numSend = 0;
  #numRecv = 0;
  #buffer: Message[] = [];
  #filling = new Set<Spool>();
  #senders: Waiter[] = [];
  #receivers: Waiter[] = [];
  #delivering = new Set<Message>();

  /**
   * @param ctx settings (spool directory, message limit)
   * @param cap buffer capacity in messages, ≥ 0
   */
  constructor(ctx: ElementContext, cap: number) {
    this.#ctx = ctx;
    this.#cap = cap;
  }

  /** @returns `{Cap, Closed, Aborted, NumSend, NumRecv}` */
  peek(): ChanPeek {
    return {
      Cap: this.#cap,
      Closed: this.#closed,
      Aborted: this.#aborted,
      NumSend: this.#numSend,
      NumRecv: this.#numRecv,
    };
  }

  /** Abort: blocked operations fail with `channel aborted`; buffered messages are dropped. */
  scrub(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    for (const w of [...this.#senders, ...this.#receivers]) w.fail(abortedError());
    this.#senders = [];
    this.#receivers = [];
    // Admitted senders still streaming stop now rather than when their input ends.
    for (const s of this.#filling) s.cancel(abortedError());
    for (const m of this.#buffer) {
      m.spool.discard();
      m.fail?.(abortedError());
    }
    this.#buffer = [];
  }

  /**
   * `send` (upload), `recv` (download plus acknowledging upload), `close`, and the batches
   * `sendMany` (args: the messages) and `recvMany` (args: `{n}`, most messages wanted).
   *
   * @param op the operation
   * @param call its streams
   * @returns null
   */
  async call(op: string, call: ElementCall): Promise<unknown> {
    switch (op) {
      case "send":
        return await this.#send(call);
      case "recv":
        return await this.#recv(call, null);
      case "sendMany":
        return await this.#sendMany(call);
      case "recvMany":
        return await this.#recv(call, parseBatchSize(call.args));
      case "close":
        return this.#close();
      default:
        throw new CircuitError("bad request", `A chan has no operation "${op}"`);
    }
  }

  /** Room for another message: buffer slots, plus receivers waiting with nothing to take. */
  #hasRoom(): boolean {
    // A buffered message keeps its slot until its receiver has acknowledged it.
    const delivering = this.#cap > 0 ? this.#delivering.size : 0;
    const pending = this.#buffer.length + this.#filling.size + delivering;
    return pending < this.#cap + this.#receivers.length;
  }

  #check(): void {
    if (this.#aborted) throw abortedError();
  }

  async #send(call: ElementCall): Promise<null> {
    // A message that came whole with its request is taken as it is, with no stream.
    const whole = call.takeUpload?.() ?? null;
    if (!whole && !call.upload) {
      throw new CircuitError("bad request", "send needs an upload stream");
    }
    await this.#sendOne(whole ?? call.upload!, call.signal);
    return null;
  }

  /**
   * Each message admitted on its own, in order, stopping at the first that fails. All of
   * them take their places in the senders' queue at once, so no other sender comes
   * between them. A message over the size limit is refused alone, up front: the others
   * still go, in order.
   */
  async #sendMany(call: ElementCall): Promise<SendManyReply> {
    const messages = parseBatch(call.args);
    this.#check();
    if (this.#closed) throw closedError();
    const limit = this.#ctx.settings.maxMessageBytes;
    const refused: number[] = [], order: number[] = [];
    for (const [i, m] of messages.entries()) (m.length > limit ? refused : order).push(i);
    const done = await this.#admitBatch(messages, order, call.signal);
    const sent = done.n === order.length ? messages.length : order[done.n];
    const reply: SendManyReply = { sent };
    const early = refused.filter((i) => i < sent);
    if (early.length > 0) reply.refused = { index: early, error: toWireError(tooLarge(limit)) };
    if (done.error !== undefined) {
      // Nothing handled: the plain error. Else the reply says how far it got.
      if (sent === 0 || !(done.error instanceof CircuitError)) throw done.error;
      reply.error = toWireError(done.error);
    }
    return reply;
  }

  /**
   * Admit `messages[order[0]]`, `messages[order[1]]`, … in order (all within the size
   * limit); how many were, and the error that stopped the rest.
   */
  async #admitBatch(
    messages: Uint8Array[],
    order: number[],
    signal: AbortSignal,
  ): Promise<{ n: number; error?: unknown }> {
    // While there is room and nobody waits before them, messages go straight into the
    // buffer (CAP > 0): what the queue below does, without a promise each.
    let n = 0;
    while (
      this.#cap > 0 && n < order.length && this.#senders.length === 0 && this.#hasRoom() &&
      !signal.aborted
    ) {
      const error = this.#bufferWhole(this.#newSpool(), messages[order[n]]);
      if (error !== undefined) return { n, error };
      n++;
    }
    if (n === order.length) return { n };
    if (this.#cap > 0) return await this.#queueBatch(messages, order, n, signal);
    // A rendezvous: each message waits for its receiver, as a lone send would; all take
    // their turns now.
    const stop = new AbortController();
    const onAbort = () => stop.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    const turns = order.slice(n).map(() => this.#turn(stop.signal));
    for (const t of turns) t.catch(() => {}); // each is awaited or given back below
    let i = 0;
    try {
      for (; i < turns.length; i++) {
        await this.#fillAndQueue(await turns[i], [messages[order[n + i]]], signal);
      }
      return { n: n + i };
    } catch (error) {
      // Give back the turns not used: queued ones leave the queue, granted ones free
      // their room.
      stop.abort(error);
      for (const t of turns.slice(i + 1)) void t.then((spool) => this.#release(spool), () => {});
      return { n: n + i, error };
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /**
   * The rest of a batch (from `order[from]`) on a buffered channel: one place in the
   * senders' queue for all of it, woken once per message as room comes; each message is
   * buffered as it is admitted.
   */
  #queueBatch(
    messages: Uint8Array[],
    order: number[],
    from: number,
    signal: AbortSignal,
  ): Promise<{ n: number; error?: unknown }> {
    return new Promise((resolve) => {
      let n = from;
      const end = (error?: unknown) => {
        signal.removeEventListener("abort", onAbort);
        resolve(error === undefined ? { n } : { n, error });
      };
      const w: Waiter = {
        more: order.length - from - 1,
        wake: (spool) => {
          this.#filling.delete(spool!);
          const error = this.#bufferWhole(spool!, messages[order[n]]);
          if (error !== undefined) {
            // The rest of the batch gives up its place (the freed room goes to the next).
            const i = this.#senders.indexOf(w);
            if (i >= 0) this.#senders.splice(i, 1);
            return end(error);
          }
          if (++n === order.length) end();
        },
        fail: (err) => end(err),
      };
      const onAbort = () => {
        const i = this.#senders.indexOf(w);
        if (i >= 0) this.#senders.splice(i, 1);
        end(new CircuitError("aborted", "The caller went away"));
        this.#admit();
        this.#dispatch();
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      this.#senders.push(w);
      this.#admit();
    });
  }

  /** A spool for a message within the size limit, not counted against the room. */
  #newSpool(): Spool {
    return new Spool(this.#ctx.settings.spoolDir, this.#ctx.settings.maxMessageBytes);
  }

  /**
   * Buffer an admitted whole message (CAP > 0), within the size limit; the error when it
   * cannot be held (the spool is then discarded: nothing was admitted).
   */
  #bufferWhole(spool: Spool, message: Uint8Array): CircuitError | undefined {
    try {
      spool.fillMemory([message]);
    } catch (err) {
      spool.discard();
      return this.#spoolError(err);
    }
    this.#buffered(spool);
  }

  /**
   * What a sender is told when its message could not be spooled: a full disk as such;
   * the limit's and scrub's reasons as they are; anything else (a broken or reset
   * upload) is a sender that went away (not a closed channel).
   */
  #spoolError(err: unknown): CircuitError {
    if (isDiskFull(err)) return diskFull(`Sending to ${this.#ctx.path}`, err);
    if (err instanceof CircuitError && (err.code === "bad request" || err.code === "aborted")) {
      return err;
    }
    return new CircuitError("aborted", "The sender went away before the end of its message", {
      cause: err,
    });
  }

  /** A complete message joins the buffer (CAP > 0): one send done. */
  #buffered(spool: Spool): void {
    this.#numSend++;
    this.#buffer.push({ spool });
    this.#dispatch();
  }

  /** One message, whole (`Uint8Array[]`) or streamed, admitted and spooled. */
  async #sendOne(
    body: Uint8Array[] | ReadableStream<Uint8Array>,
    signal: AbortSignal,
  ): Promise<void> {
    this.#check();
    if (this.#closed) throw closedError();
    await this.#fillAndQueue(await this.#turn(signal), body, signal);
  }

  /**
   * A sender's turn: the spool reserved for its message, at once when there is room and
   * nobody is queued before it, else once the senders before it are admitted.
   */
  #turn(signal: AbortSignal): Promise<Spool> {
    if (this.#senders.length > 0 || !this.#hasRoom()) {
      return this.#wait(this.#senders, signal) as Promise<Spool>;
    }
    return Promise.resolve(this.#reserve());
  }

  /** Free a reserved spool's room. */
  #release(spool: Spool): void {
    spool.discard();
    this.#filling.delete(spool);
    this.#admit();
  }

  /** Fill an admitted sender's spool, then buffer it (CAP 0: until a receiver takes it). */
  async #fillAndQueue(
    spool: Spool,
    body: Uint8Array[] | ReadableStream<Uint8Array>,
    signal: AbortSignal,
  ): Promise<void> {
    try {
      if (Array.isArray(body)) await spool.fillWhole(body);
      else await spool.fill(body);
      if (signal.aborted) throw signal.reason;
    } catch (err) {
      this.#release(spool);
      throw this.#spoolError(err);
    }
    this.#filling.delete(spool);
    if (this.#aborted) {
      spool.discard();
      throw abortedError();
    }
    if (this.#cap > 0) return this.#buffered(spool);
    // Rendezvous: the send completes when a receiver has taken the message; a sender
    // that leaves before then withdraws it.
    await new Promise<void>((resolve, reject) => {
      const m: Message = { spool, signal };
      const onAbort = () => {
        const i = this.#buffer.indexOf(m);
        if (i < 0) return; // being delivered: the delivery's outcome decides
        this.#buffer.splice(i, 1);
        spool.discard();
        reject(new CircuitError("aborted", "The sender went away"));
        this.#admit();
      };
      m.taken = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      m.fail = (err) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      };
      if (signal.aborted) {
        spool.discard();
        return reject(new CircuitError("aborted", "The sender went away"));
      }
      signal.addEventListener("abort", onAbort, { once: true });
      this.#buffer.push(m);
      this.#dispatch();
    });
    this.#numSend++;
  }

  /**
   * Receive: a plain `recv` (`batch` null) gets one message as the download; a
   * `recvMany` gets up to `batch` ready ones, each after its length.
   */
  async #recv(call: ElementCall, batch: number | null): Promise<null> {
    const framed = batch !== null;
    let woken = false;
    for (;;) {
      this.#check();
      if (this.#buffer.length > 0) {
        const taken = this.#take(batch ?? 1);
        for (const m of taken) this.#delivering.add(m);
        const ok = await this.#deliver(call, taken, framed);
        for (const m of taken) this.#delivering.delete(m);
        if (ok && !this.#aborted) {
          this.#numRecv += taken.length;
          for (const m of taken) {
            m.spool.discard();
            m.taken?.();
          }
          this.#admit();
          this.#endIfDrained();
          return null;
        }
        if (this.#aborted) {
          for (const m of taken) {
            m.spool.discard();
            m.fail?.(abortedError());
          }
          throw abortedError();
        }
        const back: Message[] = [];
        for (const m of taken) {
          if (m.signal?.aborted) {
            // A rendezvous whose sender left meanwhile: the message is withdrawn.
            m.spool.discard();
            m.fail?.(new CircuitError("aborted", "The sender went away"));
          } else back.push(m);
        }
        // The receiver went away: the messages go back, in order, for the next one.
        this.#buffer.unshift(...back);
        this.#admit();
        this.#dispatch();
        throw new CircuitError("aborted", "The receiver went away");
      }
      // After close, wait while a message may still come: one being sent, or one being
      // delivered whose receiver may yet give it back.
      if (this.#closed && this.#filling.size === 0 && this.#delivering.size === 0) {
        throw closedError();
      }
      // Woken for a message another batch took first: wait again at the head, keeping
      // this receiver's place.
      await this.#wait(this.#receivers, call.signal, () => this.#admit(), woken);
      woken = true;
    }
  }

  /**
   * The first buffered message, and after it (for a batch on a buffered channel) those
   * that are ready, small, and fit the batch's bytes. A rendezvous batch takes one:
   * each waiting receiver counts once toward admitting a sender.
   */
  #take(max: number): Message[] {
    const buffer = this.#buffer;
    let n = 1;
    if (this.#cap > 0 && max > 1 && isSmall(buffer[0].spool)) {
      let bytes = BATCH_HEADER_BYTES + buffer[0].spool.size;
      while (n < max && n < buffer.length && isSmall(buffer[n].spool)) {
        bytes += BATCH_HEADER_BYTES + buffer[n].spool.size;
        if (bytes > BATCH_BYTES) break;
        n++;
      }
    }
    return buffer.splice(0, n); // one move of the rest, not one per message
  }

  /** Hand over a batch and wait for its acknowledgement (see `deliver`). */
  #deliver(call: ElementCall, batch: Message[], framed: boolean): Promise<boolean> {
    if (!framed) {
      const { spool } = batch[0];
      return deliver(call, (w) => spool.drainTo(w), spool.small());
    }
    if (batch.length === 1 && !isSmall(batch[0].spool)) {
      // One large (or spilled) message: its length, then its bytes as they are read.
      const { spool } = batch[0];
      return deliver(call, async (w) => {
        await w.write(lengthPrefix(spool.size));
        await spool.drainTo(w);
      });
    }
    let size = 0;
    for (const m of batch) size += BATCH_HEADER_BYTES + m.spool.size;
    const out = new Uint8Array(size);
    const view = new DataView(out.buffer);
    let at = 0;
    for (const m of batch) {
      const bytes = m.spool.small()!;
      view.setUint32(at, bytes.length);
      out.set(bytes, at + BATCH_HEADER_BYTES);
      at += BATCH_HEADER_BYTES + bytes.length;
    }
    return deliver(call, (w) => w.write(out), out);
  }

  #close(): null {
    this.#check();
    if (this.#closed) throw new CircuitError("bad request", "channel already closed");
    this.#closed = true;
    for (const w of this.#senders) w.fail(closedError());
    this.#senders = [];
    this.#endIfDrained();
    return null;
  }

  /** After close, receivers wait only while messages may still come. */
  #endIfDrained(): void {
    if (!this.#closed || this.#buffer.length > 0 || this.#filling.size > 0) return;
    if (this.#delivering.size > 0) return;
    for (const w of this.#receivers) w.fail(closedError());
    this.#receivers = [];
  }

  /** A spool counted against the room from now on. */
  #reserve(): Spool {
    const spool = this.#newSpool();
    this.#filling.add(spool);
    return spool;
  }

  /** Wake blocked senders, in order, while there is room. */
  #admit(): void {
    while (this.#senders.length > 0 && this.#hasRoom()) {
      const w = this.#senders[0];
      if (w.more) w.more--;
      else this.#senders.shift();
      w.wake(this.#reserve());
    }
  }

  /** Wake the first waiting receiver if a message is ready. */
  #dispatch(): void {
    if (this.#buffer.length > 0) this.#receivers.shift()?.wake();
    this.#endIfDrained();
  }

  /**
   * Queue a call until woken; leaving the queue (caller gone) never steals a turn.
   *
   * @param queue the senders' or receivers' queue
   * @param signal the waiting call's signal
   * @param onQueued runs after joining the queue (a new receiver may admit a sender)
   * @param front join at the head (a receiver woken for nothing keeps its place)
   */
  #wait(
    queue: Waiter[],
    signal: AbortSignal,
    onQueued?: () => void,
    front = false,
  ): Promise<Spool | undefined> {
    return new Promise<Spool | undefined>((resolve, reject) => {
      const w: Waiter = {
        wake: (spool) => {
          signal.removeEventListener("abort", onAbort);
          resolve(spool);
        },
        fail: (err) => {
          signal.removeEventListener("abort", onAbort);
          reject(err);
        },
      };
      const onAbort = () => {
        const i = queue.indexOf(w);
        if (i >= 0) queue.splice(i, 1);
        reject(new CircuitError("aborted", "The caller went away"));
        // A departed receiver may leave a sender admitted for nobody; a departed
        // sender frees a turn.
        this.#admit();
        this.#dispatch();
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      if (front) queue.unshift(w);
      else queue.push(w);
      onQueued?.();
    });
  }
}

/**
 * Parse a capacity: an integer ≥ 0.
 *
 * @param raw what the client sent
 * @returns the capacity
 * @throws {CircuitError} `bad request` otherwise
 */
export function parseCap(raw: unknown): number {
  const n = typeof raw === "string" && /^\d+$/.test(raw.trim()) ? Number(raw) : raw;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
    throw new CircuitError(
      "bad request",
      `channel capacity must be a non-negative integer, got "${String(raw)}"`,
    );
  }
  return n;
}

/**
 * Parse a `sendMany`'s messages: 1 to {@linkcode BATCH_MESSAGES} byte arrays of at most
 * {@linkcode BATCH_BYTES} in all.
 *
 * @param raw what the client sent
 * @returns the messages
 * @throws {CircuitError} `bad request` otherwise
 */
export function parseBatch(raw: unknown): Uint8Array[] {
  const bad = (why: string) => new CircuitError("bad request", `sendMany: ${why}`);
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > BATCH_MESSAGES) {
    throw bad(`expected 1 to ${BATCH_MESSAGES} messages`);
  }
  let bytes = 0;
  for (const m of raw) {
    if (!(m instanceof Uint8Array)) throw bad("a message is not bytes");
    bytes += m.length;
  }
  if (bytes > BATCH_BYTES) throw bad(`the batch exceeds ${BATCH_BYTES} bytes`);
  return raw;
}

/**
 * Parse a `recvMany`'s size: `{n}` with n from 1 to {@linkcode BATCH_MESSAGES}.
 *
 * @param raw what the client sent
 * @returns n
 * @throws {CircuitError} `bad request` otherwise
 */
export function parseBatchSize(raw: unknown): number {
  const n = (raw as { n?: unknown } | null)?.n;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > BATCH_MESSAGES) {
    throw new CircuitError(
      "bad request",
      `recvMany: n must be an integer from 1 to ${BATCH_MESSAGES}, got "${String(n)}"`,
    );
  }
  return n;
}

/** A message a batch can carry as it is: small and in memory ({@linkcode Spool.small}). */
function isSmall(spool: Spool): boolean {
  return spool.inMemory && spool.size <= SMALL_MESSAGE_BYTES;
}

function lengthPrefix(n: number): Uint8Array {
  if (n > 0xffff_ffff) throw new RangeError(`A message of ${n} bytes exceeds a batch's 4 GiB`);
  const b = new Uint8Array(BATCH_HEADER_BYTES);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/** The `chan` element kind: spec `{cap}`. */
export const chanKind: ElementKind = {
  name: "chan",
  make(ctx: ElementContext, spec: unknown): Promise<Element> {
    return Promise.resolve(new ChanElement(ctx, parseCap((spec as { cap?: unknown })?.cap)));
  },
};
