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
 * The rules live in `state.ts` ({@linkcode ChanMachine}, events in, effects out); this
 * file is the shell that performs the effects: spools, streams, waits and replies.
 *
 * @module
 */

import { CircuitError, toWireError } from "../../net/errors.ts";
import type { Body } from "../../net/mux/mod.ts";
import type { Element, ElementCall, ElementContext, ElementKind } from "../element.ts";
import { deliver } from "../delivery.ts";
import { diskFull, isDiskFull, SMALL_MESSAGE_BYTES, Spool, tooLarge } from "../spool.ts";
import {
  CHAN_KIND,
  ChanOp,
  type ChanState,
  encodeRecvMany,
  encodeRecvManyHeader,
  parseRecvManyArgs,
  parseSendManyArgs,
  type SendManyReply,
} from "../../net/wire/mod.ts";
import { type ChanEffect, type ChanFailure, ChanMachine, type MessageInfo } from "./state.ts";

/** The `peek` shape. */
export type ChanPeek = ChanState;

/** How a call's wait ended: the effect that settled it. */
type Outcome = Exclude<ChanEffect, { type: "cancel" | "discard" }>;

/** How far a batch got, and what stopped the rest. */
interface BatchResult {
  /** Messages of the batch's order admitted. */
  n: number;
  /** Why the rest were not. */
  error?: unknown;
}

/** The error a failure from the rules stands for. */
function failureError(failure: ChanFailure): CircuitError {
  switch (failure) {
    case "closed":
      return new CircuitError("closed", "channel closed");
    case "aborted":
      return new CircuitError("aborted", "channel aborted");
    case "alreadyClosed":
      return new CircuitError("bad request", "channel already closed");
    case "callerGone":
      return new CircuitError("aborted", "The caller went away");
    case "senderGone":
      return new CircuitError("aborted", "The sender went away");
    case "receiverGone":
      return new CircuitError("aborted", "The receiver went away");
  }
}

/** The outcome of a call, or its failure thrown. */
function settled<T extends Outcome["type"]>(
  out: Outcome,
  type: T,
): Extract<Outcome, { type: T }> {
  if (out.type === "fail") throw failureError(out.failure);
  if (out.type !== type) throw new Error(`A chan call expected "${type}", got "${out.type}"`);
  return out as Extract<Outcome, { type: T }>;
}

/** A channel. */
export class ChanElement implements Element {
  /** `ls -l` kind. */
  readonly kind = CHAN_KIND;
  #ctx: ElementContext;
  #chan: ChanMachine;
  /** The spool of each reserved slot and held message. */
  #spools = new Map<number, Spool>();
  /** Calls waiting for their outcome, by id. */
  #calls = new Map<number, (out: Outcome) => void>();

  /**
   * @param ctx settings (spool directory, message limit)
   * @param cap buffer capacity in messages, ≥ 0
   */
  constructor(ctx: ElementContext, cap: number) {
    this.#ctx = ctx;
    this.#chan = new ChanMachine(cap);
  }

  /** @returns `{Cap, Closed, Aborted, NumSend, NumRecv}` */
  peek(): ChanPeek {
    const c = this.#chan;
    return {
      Cap: c.cap,
      Closed: c.closed,
      Aborted: c.aborted,
      NumSend: c.numSend,
      NumRecv: c.numRecv,
    };
  }

  /** Abort: blocked operations fail with `channel aborted`; buffered messages are dropped. */
  scrub(): void {
    this.#run(this.#chan.scrub());
  }

  /**
   * `send` (upload), `recv` (download plus acknowledging upload), `close`, and the batches
   * `sendMany` (args: the messages) and `recvMany` (args: `{n}`, most messages wanted).
   *
   * @param op the operation
   * @param call its streams
   * @returns null, or for `sendMany` how far it got
   */
  async call(op: string, call: ElementCall): Promise<unknown> {
    switch (op) {
      case ChanOp.SEND:
        return await this.#send(call);
      case ChanOp.RECV:
        return await this.#recv(call, null);
      case ChanOp.SEND_MANY:
        return await this.#sendMany(call);
      case ChanOp.RECV_MANY:
        return await this.#recv(call, parseRecvManyArgs(call.args));
      case ChanOp.CLOSE: {
        const id = this.#chan.id();
        settled(await this.#step(id, null, () => this.#chan.close(id)), "done");
        return null;
      }
      default:
        throw new CircuitError("bad request", `A chan has no operation "${op}"`);
    }
  }

  /** Perform effects: spools here, outcomes to the calls waiting for them. */
  #run(effects: ChanEffect[]): void {
    for (const e of effects) {
      switch (e.type) {
        case "cancel":
          this.#spools.get(e.slot)?.cancel(failureError("aborted"));
          break;
        case "discard":
          this.#spools.get(e.id)?.discard();
          this.#spools.delete(e.id);
          break;
        case "grant":
          this.#spools.set(
            e.slot,
            new Spool(this.#ctx.settings.spoolDir, this.#ctx.settings.maxMessageBytes),
          );
          this.#calls.get(e.id)?.(e);
          break;
        default:
          this.#calls.get(e.id)?.(e);
      }
    }
  }

  /**
   * Run an event for call `id` and wait for its outcome (at once when the event settles
   * it). While it waits, the call's signal makes it leave.
   */
  #step(id: number, signal: AbortSignal | null, event: () => ChanEffect[]): Promise<Outcome> {
    return new Promise((resolve) => {
      const onAbort = () => this.#run(this.#chan.leave(id));
      this.#calls.set(id, (out) => {
        this.#calls.delete(id);
        signal?.removeEventListener("abort", onAbort);
        resolve(out);
      });
      this.#run(event());
      if (!signal || !this.#calls.has(id)) return;
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  async #send(call: ElementCall): Promise<null> {
    if (!call.up) throw new CircuitError("bad request", "send needs an upload stream");
    // A message that came whole with its request is taken as it is, with no stream.
    const body = call.up.body();
    this.#checkOpen();
    const id = this.#chan.id();
    await this.#sendOne(id, body, call.signal);
    return null;
  }

  /** Throw when the channel takes no more messages. */
  #checkOpen(): void {
    if (this.#chan.aborted) throw failureError("aborted");
    if (this.#chan.closed) throw failureError("closed");
  }

  /** One message, whole or streamed, admitted, spooled and buffered. */
  async #sendOne(id: number, body: Body, signal: AbortSignal): Promise<void> {
    const turn = this.#step(id, signal, () => this.#chan.send(id, { waiting: !signal.aborted }));
    const { slot } = settled(await turn, "grant");
    await this.#fill(id, slot, body, signal);
  }

  /**
   * Fill an admitted sender's spool, then buffer it; on CAP 0, wait until a receiver has
   * consumed it (a sender that leaves first withdraws it).
   */
  async #fill(id: number, slot: number, body: Body, signal: AbortSignal): Promise<void> {
    const spool = this.#spools.get(slot)!;
    try {
      if (body instanceof Uint8Array) await spool.fillWhole([body]);
      else await spool.fill(body);
      if (signal.aborted) throw signal.reason;
    } catch (err) {
      this.#run(this.#chan.fillFailed(slot));
      throw this.#spoolError(err);
    }
    settled(await this.#step(id, signal, () => this.#chan.filled(slot, infoOf(spool))), "done");
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

  /**
   * Each message admitted on its own, in order, stopping at the first that fails. All of
   * them take their places in the senders' queue at once, so no other sender comes
   * between them. A message over the size limit is refused alone, up front: the others
   * still go, in order.
   */
  async #sendMany(call: ElementCall): Promise<SendManyReply> {
    const messages = parseSendManyArgs(call.args);
    this.#checkOpen();
    const limit = this.#ctx.settings.maxMessageBytes;
    const refused: number[] = [], order: number[] = [];
    for (const [i, m] of messages.entries()) (m.length > limit ? refused : order).push(i);
    const batch = order.map((i) => messages[i]);
    const done = order.length === 0
      ? { n: 0 }
      : this.#chan.cap > 0
      ? await this.#bufferBatch(batch, call.signal)
      : await this.#rendezvousBatch(batch, call.signal);
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
   * A batch on a buffered channel: one place in the senders' queue for all of it, each
   * message stored as it is admitted (at once while there is room and nobody waits before
   * it).
   */
  #bufferBatch(messages: Uint8Array[], signal: AbortSignal): Promise<BatchResult> {
    if (signal.aborted) return Promise.resolve({ n: 0, error: failureError("callerGone") });
    return new Promise((resolve) => {
      const id = this.#chan.id();
      let n = 0;
      const end = (error?: unknown) => {
        this.#calls.delete(id);
        signal.removeEventListener("abort", onAbort);
        resolve(error === undefined ? { n } : { n, error });
      };
      const onAbort = () => this.#run(this.#chan.leave(id));
      this.#calls.set(id, (out) => {
        if (out.type === "fail") return end(failureError(out.failure));
        if (out.type !== "grant") return;
        const spool = this.#spools.get(out.slot)!;
        try {
          spool.fillMemory([messages[n]]);
        } catch (err) {
          end(this.#spoolError(err));
          // The rest of the batch gives up its place (the freed room goes to the next).
          return this.#run(this.#chan.fillFailed(out.slot));
        }
        if (++n === messages.length) end();
        this.#run(this.#chan.filled(out.slot, infoOf(spool)));
      });
      this.#run(this.#chan.send(id, { count: messages.length, immediate: true }));
      if (this.#calls.has(id)) signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * A batch on a rendezvous: each message waits for its receiver, as a lone send would;
   * all take their turns in the queue at once.
   */
  async #rendezvousBatch(messages: Uint8Array[], signal: AbortSignal): Promise<BatchResult> {
    const ids = messages.map(() => this.#chan.id());
    const turns = ids.map((id) =>
      this.#step(id, signal, () => this.#chan.send(id, { waiting: !signal.aborted }))
    );
    let i = 0;
    try {
      for (; i < turns.length; i++) {
        const { slot } = settled(await turns[i], "grant");
        await this.#fill(ids[i], slot, messages[i], signal);
      }
      return { n: i };
    } catch (error) {
      // Give back the turns not used: queued ones leave the queue, granted ones free
      // their room.
      for (const [j, id] of ids.entries()) {
        if (j <= i) continue;
        this.#run(this.#chan.leave(id));
        void turns[j].then((out) => {
          if (out.type === "grant") this.#run(this.#chan.fillFailed(out.slot));
        });
      }
      return { n: i, error };
    }
  }

  /**
   * Receive: a plain `recv` (`batch` null) gets one message as the download; a
   * `recvMany` gets up to `batch` ready ones, each after its length.
   */
  async #recv(call: ElementCall, batch: number | null): Promise<null> {
    const id = this.#chan.id();
    let front = false;
    for (;;) {
      const options = { max: batch ?? 1, front, waiting: !call.signal.aborted };
      const out = await this.#step(id, call.signal, () => this.#chan.recv(id, options));
      // Woken for a message another batch took first: ask again at the head, keeping
      // this receiver's place.
      if (out.type === "wake") {
        front = true;
        continue;
      }
      const { messages } = settled(out, "deliver");
      const ok = await this.#deliver(call, messages, batch !== null);
      const answer = ok
        ? () => this.#chan.acknowledged(id, messages)
        : () => this.#chan.givenBack(id, messages);
      settled(await this.#step(id, null, answer), "done");
      return null;
    }
  }

  /** Hand over messages and wait for their acknowledgement (see `deliver`). */
  #deliver(call: ElementCall, messages: number[], framed: boolean): Promise<boolean> {
    const spools = messages.map((m) => this.#spools.get(m)!);
    if (!framed) {
      const [spool] = spools;
      return deliver(call, (w) => spool.drainTo(w), spool.small());
    }
    if (spools.length === 1 && !isSmall(spools[0])) {
      // One large (or spilled) message: its length, then its bytes as they are read.
      const [spool] = spools;
      return deliver(call, async (w) => {
        await w.write(encodeRecvManyHeader(spool.size));
        await spool.drainTo(w);
      });
    }
    const out = encodeRecvMany(spools.map((s) => s.small()!));
    return deliver(call, (w) => w.write(out), out);
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

/** A message a batch can carry as it is: small and in memory ({@linkcode Spool.small}). */
function isSmall(spool: Spool): boolean {
  return spool.inMemory && spool.size <= SMALL_MESSAGE_BYTES;
}

/** What the rules need to know of a filled spool. */
function infoOf(spool: Spool): MessageInfo {
  return { size: spool.size, small: isSmall(spool) };
}

/** The `chan` element kind: spec `{cap}`. */
export const chanKind: ElementKind = {
  name: CHAN_KIND,
  make(ctx: ElementContext, spec: unknown): Promise<Element> {
    return Promise.resolve(new ChanElement(ctx, parseCap((spec as { cap?: unknown })?.cap)));
  },
};
