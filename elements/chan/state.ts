/**
 * A channel's rules as a pure state machine: events in, effects out. Nothing here awaits,
 * touches a spool or a stream, or knows about signals: each event reads and changes the
 * state in one step and returns what the shell (`chan.ts`) must then do. Calls, reserved
 * message slots and messages are named by numbers from {@linkcode ChanMachine.id}.
 *
 * The rules:
 * - A message takes room from the moment its sender is admitted (its slot is reserved)
 *   until it is consumed. Room is the capacity plus the receivers waiting with nothing to
 *   take; on a buffered channel a message being delivered keeps its room until its receiver
 *   acknowledges it. CAP 0 is the same rule with no slots: a sender is admitted only for
 *   a waiting receiver.
 * - Senders are admitted in the order they asked, and none is admitted while another
 *   waits before it. A batch holds one place in the queue for all its messages.
 * - A message becomes deliverable only when its slot is filled whole, and is consumed only
 *   when its receiver acknowledges it; a receiver that goes away gives its messages back,
 *   in order, at the head of the buffer. On CAP 0 the sender completes when its message is
 *   consumed, and a sender that goes away first withdraws it.
 * - After close, senders fail and receivers wait only while a message may still come (one
 *   being sent, buffered, or being delivered and perhaps given back).
 * - Scrub fails every waiting call, stops every fill and drops the buffer; messages out
 *   for delivery are dropped when their receivers answer.
 *
 * @example A message through a channel of capacity 1
 * ```ts
 * import { ChanMachine } from "./state.ts";
 *
 * const chan = new ChanMachine(1);
 * const sender = chan.id(), receiver = chan.id();
 * chan.send(sender); // [{ type: "grant", id: sender, slot: sender }]
 * chan.filled(sender, { size: 5, small: true }); // [{ type: "done", id: sender }]
 * chan.recv(receiver); // [{ type: "deliver", id: receiver, messages: [sender] }]
 * chan.acknowledged(receiver, [sender]); // discard the message; receiver done
 * ```
 *
 * @module
 */

import { BATCH_BYTES, BATCH_HEADER_BYTES } from "../../net/wire/mod.ts";

/** Why a call failed; the shell turns each into a {@linkcode CircuitError}. */
export type ChanFailure =
  /** The channel is closed for sending, or drained after close (a receiver). */
  | "closed"
  /** The channel was scrubbed. */
  | "aborted"
  /** `close` of a channel already closed. */
  | "alreadyClosed"
  /** The caller went away while it waited in a queue. */
  | "callerGone"
  /** A CAP 0 sender went away before its message was consumed: the message is withdrawn. */
  | "senderGone"
  /** A receiver went away before acknowledging: its messages went back. */
  | "receiverGone";

/** What the shell does after an event. Effects with an `id` settle or resume that call. */
export type ChanEffect =
  /**
   * Sender `id` is admitted for one message: reserve a spool for `slot` and fill it, then
   * report `filled` or `fillFailed`. A sender that sends one message gets its own id as
   * its slot.
   */
  | { type: "grant"; id: number; slot: number }
  /** Receiver `id` may find a message now: it asks again with `recv({front: true})`. */
  | { type: "wake"; id: number }
  /** Receiver `id` gets these messages; report `acknowledged` or `givenBack`. */
  | { type: "deliver"; id: number; messages: number[] }
  /** Call `id` (or the sender of message `id`) failed. */
  | { type: "fail"; id: number; failure: ChanFailure }
  /** Call `id` (or the sender of message `id`) completed. */
  | { type: "done"; id: number }
  /** Stop the fill of `slot` under way (scrub): it will fail or report `filled`. */
  | { type: "cancel"; slot: number }
  /** Free message (or slot) `id`'s spool: it is consumed, dropped or withdrawn. */
  | { type: "discard"; id: number };

/** What the rules need to know of a filled message. */
export interface MessageInfo {
  /** Its length, in bytes. */
  size: number;
  /** Whether a batch may carry it as it is (held in memory and small). */
  small: boolean;
}

/** Options of {@linkcode ChanMachine.send}. */
export interface SendOptions {
  /** Messages the call sends; a batch holds one place in the queue. @default {1} */
  count?: number;
  /**
   * The sender answers each grant at once, with `filled` or `fillFailed`, before anything
   * else happens (a batch of whole messages stored in memory). Admitting pauses after
   * such a grant and resumes with the answer, so each message is buffered (and may wake a
   * receiver) before room is counted for the next. @default {false}
   */
  immediate?: boolean;
  /** The caller can still wait in the queue (it has not gone away). @default {true} */
  waiting?: boolean;
}

/** Options of {@linkcode ChanMachine.recv}. */
export interface RecvOptions {
  /** Most messages wanted (a `recvMany`); a buffered channel's batch takes small ones. @default {1} */
  max?: number;
  /** Queue at the head: a receiver woken for a message another took keeps its place. @default {false} */
  front?: boolean;
  /** The caller can still wait in the queue (it has not gone away). @default {true} */
  waiting?: boolean;
}

/** A queued sender. */
interface SenderEntry {
  id: number;
  /** Messages it still needs slots for. */
  left: number;
  /** Whether its first slot may be its own id (a one-message send). */
  single: boolean;
  immediate: boolean;
}

/** One channel's state and the rules that move it. */
export class ChanMachine {
  /** Buffer capacity in messages, ≥ 0. */
  readonly cap: number;
  #closed = false;
  #aborted = false;
  #numSend = 0;
  #numRecv = 0;
  #ids = 0;
  /** Filled messages waiting for a receiver, in order. */
  #buffer: number[] = [];
  /** What is known of each filled message. */
  #info = new Map<number, MessageInfo>();
  /** Reserved slots being filled, and whose they are. */
  #filling = new Map<number, number>();
  /** Messages out for delivery, awaiting their receivers' answers. */
  #delivering = new Set<number>();
  /** CAP 0 messages out for delivery whose senders went away meanwhile. */
  #withdrawn = new Set<number>();
  #senders: SenderEntry[] = [];
  #receivers: number[] = [];
  /** The slot of an immediate grant not yet answered: admitting waits for it. */
  #paused: number | null = null;

  /** @param cap buffer capacity in messages, ≥ 0 */
  constructor(cap: number) {
    this.cap = cap;
  }

  /** Closed for sending. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Scrubbed. */
  get aborted(): boolean {
    return this.#aborted;
  }

  /** Completed sends. */
  get numSend(): number {
    return this.#numSend;
  }

  /** Completed deliveries (acknowledged messages). */
  get numRecv(): number {
    return this.#numRecv;
  }

  /** Messages filled and not yet out for delivery. */
  get buffered(): number {
    return this.#buffer.length;
  }

  /** Senders waiting for admission, and receivers waiting for a message. */
  get waiting(): { senders: number; receivers: number } {
    return { senders: this.#senders.length, receivers: this.#receivers.length };
  }

  /** Messages that hold room: reserved, buffered, and (CAP > 0) out for delivery. */
  get pending(): number {
    const delivering = this.cap > 0 ? this.#delivering.size : 0;
    return this.#buffer.length + this.#filling.size + delivering;
  }

  /**
   * A fresh id for a call, a slot or a message.
   *
   * @returns the id, never given before by this machine
   */
  id(): number {
    return ++this.#ids;
  }

  /**
   * Sender `id` asks to send `count` messages. Guards: scrubbed or closed fail it. It then
   * joins the senders' queue, and is granted slots as room comes.
   *
   * @param id the call
   * @param options how many messages, whether answered at once, whether it can wait
   * @returns the effects
   */
  send(id: number, options: SendOptions = {}): ChanEffect[] {
    const out: ChanEffect[] = [];
    // A scrubbed or closed channel admits nothing.
    if (this.#aborted) return fail(out, id, "aborted");
    if (this.#closed) return fail(out, id, "closed");
    const count = options.count ?? 1;
    // A caller that cannot wait goes only when it would be admitted at once.
    if (options.waiting === false && (this.#senders.length > 0 || !this.#hasRoom())) {
      return fail(out, id, "callerGone");
    }
    const immediate = options.immediate ?? false;
    this.#senders.push({ id, left: count, single: count === 1 && !immediate, immediate });
    this.#admit(out);
    return out;
  }

  /**
   * A granted slot was filled whole: the message joins the buffer. On a buffered channel
   * its sender is done; on CAP 0 it waits for a receiver to consume it.
   *
   * @param slot the slot from the grant
   * @param info the message's size, and whether it is small and in memory
   * @returns the effects
   */
  filled(slot: number, info: MessageInfo): ChanEffect[] {
    const out: ChanEffect[] = [];
    this.#filling.delete(slot);
    if (this.#paused === slot) this.#paused = null;
    // Scrubbed while it filled: dropped, and its sender told.
    if (this.#aborted) {
      out.push({ type: "discard", id: slot });
      return fail(out, slot, "aborted");
    }
    this.#info.set(slot, info);
    this.#buffer.push(slot);
    if (this.cap > 0) {
      this.#numSend++;
      out.push({ type: "done", id: slot });
    }
    this.#dispatch(out);
    this.#admit(out); // resumes admitting after an immediate grant
    return out;
  }

  /**
   * A granted slot could not be filled (the sender's stream broke, the disk is full, it
   * went away): its room is freed. A batch that still waits for more slots gives up its
   * place in the queue. The shell tells the sender why.
   *
   * @param slot the slot from the grant
   * @returns the effects
   */
  fillFailed(slot: number): ChanEffect[] {
    const out: ChanEffect[] = [{ type: "discard", id: slot }];
    const sender = this.#filling.get(slot);
    this.#filling.delete(slot);
    if (this.#paused === slot) this.#paused = null;
    const i = this.#senders.findIndex((s) => s.id === sender);
    if (i >= 0) this.#senders.splice(i, 1);
    this.#admit(out);
    return out;
  }

  /**
   * Receiver `id` asks for a message. Guards: scrubbed fails it; a ready message is
   * delivered at once; a drained closed channel fails it. Else it waits in the queue,
   * where it may make room for a CAP 0 sender.
   *
   * @param id the call
   * @param options batch size, place in the queue, whether it can wait
   * @returns the effects
   */
  recv(id: number, options: RecvOptions = {}): ChanEffect[] {
    const out: ChanEffect[] = [];
    if (this.#aborted) return fail(out, id, "aborted");
    if (this.#buffer.length > 0) {
      const messages = this.#take(options.max ?? 1);
      for (const m of messages) this.#delivering.add(m);
      out.push({ type: "deliver", id, messages });
      return out;
    }
    // After close, wait only while a message may still come.
    if (this.#drained()) return fail(out, id, "closed");
    if (options.waiting === false) return fail(out, id, "callerGone");
    if (options.front) this.#receivers.unshift(id);
    else this.#receivers.push(id);
    this.#admit(out);
    return out;
  }

  /**
   * Receiver `id` acknowledged `messages`: they are consumed (on CAP 0 their senders are
   * done), unless the channel was scrubbed meanwhile.
   *
   * @param id the receiver
   * @param messages what it was delivered
   * @returns the effects
   */
  acknowledged(id: number, messages: number[]): ChanEffect[] {
    const out: ChanEffect[] = [];
    for (const m of messages) this.#delivering.delete(m);
    if (this.#aborted) return this.#dropDelivered(out, id, messages);
    this.#numRecv += messages.length;
    for (const m of messages) {
      this.#forget(out, m);
      if (this.cap === 0) {
        this.#numSend++;
        out.push({ type: "done", id: m });
      }
    }
    this.#admit(out);
    this.#endIfDrained(out);
    out.push({ type: "done", id });
    return out;
  }

  /**
   * Receiver `id` went away before acknowledging `messages`: they go back to the head of
   * the buffer, in order, except CAP 0 messages whose senders left meanwhile.
   *
   * @param id the receiver
   * @param messages what it was delivered
   * @returns the effects
   */
  givenBack(id: number, messages: number[]): ChanEffect[] {
    const out: ChanEffect[] = [];
    for (const m of messages) this.#delivering.delete(m);
    if (this.#aborted) return this.#dropDelivered(out, id, messages);
    const back: number[] = [];
    for (const m of messages) {
      if (!this.#withdrawn.delete(m)) back.push(m);
      else {
        this.#forget(out, m);
        fail(out, m, "senderGone");
      }
    }
    this.#buffer.unshift(...back);
    this.#admit(out);
    this.#dispatch(out);
    return fail(out, id, "receiverGone");
  }

  /**
   * Call `id` went away. A queued sender or receiver leaves its queue (never stealing a
   * turn); a CAP 0 message waiting for a receiver is withdrawn; one out for delivery is
   * withdrawn if its receiver gives it back. Anything else is not waiting here.
   *
   * @param id the call
   * @returns the effects
   */
  leave(id: number): ChanEffect[] {
    const out: ChanEffect[] = [];
    const s = this.#senders.findIndex((e) => e.id === id);
    const r = s >= 0 ? -1 : this.#receivers.indexOf(id);
    if (s >= 0 || r >= 0) {
      if (s >= 0) this.#senders.splice(s, 1);
      else this.#receivers.splice(r, 1);
      fail(out, id, "callerGone");
      // A departed receiver may leave a sender admitted for nobody; a departed sender
      // frees a turn.
      this.#admit(out);
      this.#dispatch(out);
      return out;
    }
    if (this.cap > 0) return out;
    const b = this.#buffer.indexOf(id);
    if (b >= 0) {
      this.#buffer.splice(b, 1);
      this.#forget(out, id);
      fail(out, id, "senderGone");
      this.#admit(out);
    } else if (this.#delivering.has(id)) this.#withdrawn.add(id);
    return out;
  }

  /**
   * Close `id`: senders waiting fail; receivers wait only while a message may still come.
   *
   * @param id the call
   * @returns the effects
   */
  close(id: number): ChanEffect[] {
    const out: ChanEffect[] = [];
    if (this.#aborted) return fail(out, id, "aborted");
    if (this.#closed) return fail(out, id, "alreadyClosed");
    this.#closed = true;
    for (const s of this.#senders) fail(out, s.id, "closed");
    this.#senders = [];
    this.#endIfDrained(out);
    out.push({ type: "done", id });
    return out;
  }

  /**
   * Scrub: every waiting call fails, every fill stops, buffered messages are dropped (and
   * their CAP 0 senders fail). Only the first scrub does anything.
   *
   * @returns the effects
   */
  scrub(): ChanEffect[] {
    const out: ChanEffect[] = [];
    if (this.#aborted) return out;
    this.#aborted = true;
    for (const s of this.#senders) fail(out, s.id, "aborted");
    for (const r of this.#receivers) fail(out, r, "aborted");
    this.#senders = [];
    this.#receivers = [];
    // Admitted senders still streaming stop now rather than when their input ends.
    for (const slot of this.#filling.keys()) out.push({ type: "cancel", slot });
    for (const m of this.#buffer) {
      this.#forget(out, m);
      if (this.cap === 0) fail(out, m, "aborted");
    }
    this.#buffer = [];
    return out;
  }

  /** Room for another message: capacity plus waiting receivers, less what holds room. */
  #hasRoom(): boolean {
    return this.pending < this.cap + this.#receivers.length;
  }

  /** Grant slots to queued senders, in order, while there is room. */
  #admit(out: ChanEffect[]): void {
    while (this.#paused === null && this.#senders.length > 0 && this.#hasRoom()) {
      const s = this.#senders[0];
      const slot = s.single ? s.id : this.id();
      if (--s.left === 0) this.#senders.shift();
      this.#filling.set(slot, s.id);
      out.push({ type: "grant", id: s.id, slot });
      if (s.immediate) this.#paused = slot; // resumed by its answer
    }
  }

  /** Wake the first waiting receiver if a message is ready. */
  #dispatch(out: ChanEffect[]): void {
    if (this.#buffer.length > 0 && this.#receivers.length > 0) {
      out.push({ type: "wake", id: this.#receivers.shift()! });
    }
    this.#endIfDrained(out);
  }

  /** Closed, and no message buffered, being filled, or out for delivery. */
  #drained(): boolean {
    return this.#closed && this.#buffer.length === 0 && this.#filling.size === 0 &&
      this.#delivering.size === 0;
  }

  /** After close, receivers wait only while messages may still come. */
  #endIfDrained(out: ChanEffect[]): void {
    if (!this.#drained()) return;
    for (const r of this.#receivers) fail(out, r, "closed");
    this.#receivers = [];
  }

  /**
   * The first buffered message, and after it (for a batch on a buffered channel) those
   * that are small and fit the batch's bytes. A rendezvous batch takes one: each waiting
   * receiver counts once toward admitting a sender.
   */
  #take(max: number): number[] {
    const buffer = this.#buffer;
    let n = 1;
    const first = this.#info.get(buffer[0])!;
    if (this.cap > 0 && max > 1 && first.small) {
      let bytes = BATCH_HEADER_BYTES + first.size;
      while (n < max && n < buffer.length) {
        const next = this.#info.get(buffer[n])!;
        if (!next.small) break;
        bytes += BATCH_HEADER_BYTES + next.size;
        if (bytes > BATCH_BYTES) break;
        n++;
      }
    }
    return buffer.splice(0, n); // one move of the rest, not one per message
  }

  /** Messages answered after a scrub: dropped, their CAP 0 senders and the receiver fail. */
  #dropDelivered(out: ChanEffect[], id: number, messages: number[]): ChanEffect[] {
    for (const m of messages) {
      this.#withdrawn.delete(m);
      this.#forget(out, m);
      if (this.cap === 0) fail(out, m, "aborted");
    }
    return fail(out, id, "aborted");
  }

  /** A message leaves the channel: its spool is freed. */
  #forget(out: ChanEffect[], m: number): void {
    this.#info.delete(m);
    out.push({ type: "discard", id: m });
  }
}

/** Add a failure of `id` to the effects. */
function fail(out: ChanEffect[], id: number, failure: ChanFailure): ChanEffect[] {
  out.push({ type: "fail", id, failure });
  return out;
}
