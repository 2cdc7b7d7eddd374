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
 * @module
 */

import { CircuitError } from "../../net/errors.ts";
import type { Element, ElementCall, ElementContext, ElementKind } from "../element.ts";
import { deliver } from "../delivery.ts";
import { Spool } from "../spool.ts";

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
  call: ElementCall;
  /** Resume the call; a sender is handed the spool reserved for its message. */
  wake(spool?: Spool): void;
  fail(err: CircuitError): void;
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
   * `send` (upload), `recv` (download plus acknowledging upload), `close`.
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
        return await this.#recv(call);
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
    this.#check();
    if (this.#closed) throw closedError();
    // Blocked senders are admitted in arrival order; admission reserves the room.
    let spool: Spool;
    if (this.#senders.length > 0 || !this.#hasRoom()) {
      spool = (await this.#wait(this.#senders, call))!;
    } else {
      spool = this.#reserve();
    }
    try {
      if (whole) await spool.fillWhole(whole);
      else await spool.fill(call.upload!);
      if (call.signal.aborted) throw call.signal.reason;
    } catch (err) {
      spool.discard();
      this.#filling.delete(spool);
      this.#admit();
      // Keep the limit's and scrub's reasons; a broken or reset upload is a sender that
      // went away (not a closed channel).
      if (err instanceof CircuitError && (err.code === "bad request" || err.code === "aborted")) {
        throw err;
      }
      throw new CircuitError("aborted", "The sender went away before the end of its message");
    }
    this.#filling.delete(spool);
    if (this.#aborted) {
      spool.discard();
      throw abortedError();
    }
    if (this.#cap > 0) {
      this.#numSend++;
      this.#buffer.push({ spool });
      this.#dispatch();
      return null;
    }
    // Rendezvous: the send completes when a receiver has taken the message; a sender
    // that leaves before then withdraws it.
    await new Promise<void>((resolve, reject) => {
      const m: Message = { spool, signal: call.signal };
      const onAbort = () => {
        const i = this.#buffer.indexOf(m);
        if (i < 0) return; // being delivered: the delivery's outcome decides
        this.#buffer.splice(i, 1);
        spool.discard();
        reject(new CircuitError("aborted", "The sender went away"));
        this.#admit();
      };
      m.taken = () => {
        call.signal.removeEventListener("abort", onAbort);
        resolve();
      };
      m.fail = (err) => {
        call.signal.removeEventListener("abort", onAbort);
        reject(err);
      };
      if (call.signal.aborted) {
        spool.discard();
        return reject(new CircuitError("aborted", "The sender went away"));
      }
      call.signal.addEventListener("abort", onAbort, { once: true });
      this.#buffer.push(m);
      this.#dispatch();
    });
    this.#numSend++;
    return null;
  }

  async #recv(call: ElementCall): Promise<null> {
    for (;;) {
      this.#check();
      const m = this.#buffer.shift();
      if (m) {
        this.#delivering.add(m);
        const ok = await deliver(call, (w) => m.spool.drainTo(w), m.spool.small());
        this.#delivering.delete(m);
        if (ok && !this.#aborted) {
          this.#numRecv++;
          m.spool.discard();
          m.taken?.();
          this.#admit();
          this.#endIfDrained();
          return null;
        }
        if (this.#aborted) {
          m.spool.discard();
          m.fail?.(abortedError());
          throw abortedError();
        }
        if (m.signal?.aborted) {
          // A rendezvous whose sender left meanwhile: the message is withdrawn.
          m.spool.discard();
          m.fail?.(new CircuitError("aborted", "The sender went away"));
          this.#admit();
        } else {
          // The receiver went away: the message goes back for the next one.
          this.#buffer.unshift(m);
        }
        this.#dispatch();
        throw new CircuitError("aborted", "The receiver went away");
      }
      // After close, wait while a message may still come: one being sent, or one being
      // delivered whose receiver may yet give it back.
      if (this.#closed && this.#filling.size === 0 && this.#delivering.size === 0) {
        throw closedError();
      }
      await this.#wait(this.#receivers, call, () => this.#admit());
    }
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
    const spool = new Spool(this.#ctx.settings.spoolDir, this.#ctx.settings.maxMessageBytes);
    this.#filling.add(spool);
    return spool;
  }

  /** Wake blocked senders, in order, while there is room. */
  #admit(): void {
    while (this.#senders.length > 0 && this.#hasRoom()) {
      this.#senders.shift()!.wake(this.#reserve());
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
   * @param call the waiting call
   * @param onQueued runs after joining the queue (a new receiver may admit a sender)
   */
  #wait(queue: Waiter[], call: ElementCall, onQueued?: () => void): Promise<Spool | undefined> {
    return new Promise<Spool | undefined>((resolve, reject) => {
      const w: Waiter = {
        call,
        wake: (spool) => {
          call.signal.removeEventListener("abort", onAbort);
          resolve(spool);
        },
        fail: (err) => {
          call.signal.removeEventListener("abort", onAbort);
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
      if (call.signal.aborted) return onAbort();
      call.signal.addEventListener("abort", onAbort, { once: true });
      queue.push(w);
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

/** The `chan` element kind: spec `{cap}`. */
export const chanKind: ElementKind = {
  name: "chan",
  make(ctx: ElementContext, spec: unknown): Promise<Element> {
    return Promise.resolve(new ChanElement(ctx, parseCap((spec as { cap?: unknown })?.cap)));
  },
};
