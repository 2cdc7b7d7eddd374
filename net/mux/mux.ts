/**
 * The mux: multiplexed calls and byte streams over one framed connection, composed of
 * the codec, the outbox, the stream halves, the relay, the keep-alive and the deadlines.
 * It keeps the calls in flight, each side's by id, and routes each message to its call.
 *
 * @module
 */

import { abortError, CircuitError, fromWireError, toWireError } from "../errors.ts";
import { checkMessage, decodeFrame, Dir, encodeMessage, Flag, type Message, Tag } from "./codec.ts";
import { DeadlineTimer, expireDue } from "./deadlines.ts";
import { InCall, type InState } from "./incoming.ts";
import { KeepAlive } from "./keepalive.ts";
import { DIRECT_DATA_BYTES, Outbox } from "./outbox.ts";
import { OutCall, type OutState } from "./outgoing.ts";
import type { StreamPort } from "./port.ts";
import { RecvStream } from "./recv_stream.ts";
import { relayCall } from "./relay.ts";
import { SendStream } from "./send_stream.ts";
import type { CallOptions, IncomingCall, MuxOptions, MuxStats, OutgoingCall } from "./types.ts";

/** Longest {@linkcode Mux.goAway} waits for its GOAWAY to be written before closing, in ms. */
export const GOAWAY_FLUSH_MS = 500;

/** One side of a multiplexed connection. */
export class Mux implements StreamPort {
  #o: MuxOptions;
  #nextId: number;
  #out = new Map<number, OutState>();
  #in = new Map<number, InState>();
  #outbox: Outbox;
  #closed: CircuitError | null = null;
  #keepAlive: KeepAlive;
  #deadlines = new DeadlineTimer(() => this.#expire());
  #framesIn = 0;

  /** @param options the connection's hooks and config */
  constructor(options: MuxOptions) {
    this.#o = options;
    this.#nextId = options.parity;
    this.#outbox = new Outbox({
      writeFrame: options.writeFrame,
      coalesceBytes: options.config.coalesceBytes,
      onWriteError: (err) =>
        this.close(
          new CircuitError("unreachable", `Writing to ${options.peerName} failed`, { cause: err }),
        ),
    });
    this.#keepAlive = new KeepAlive({
      timings: options.config,
      ping: () => this.send([Tag.PING, 0]),
      dead: () =>
        this.close(
          new CircuitError(
            "unreachable",
            `Connection to ${options.peerName} is dead: nothing received for ${options.config.deadAfterMs} ms`,
          ),
        ),
    });
  }

  /** Whether the mux has closed. */
  get isClosed(): boolean {
    return this.#closed !== null;
  }

  /** Counters. */
  get stats(): MuxStats {
    return {
      framesOut: this.#outbox.framesOut,
      framesIn: this.#framesIn,
      messagesOut: this.#outbox.messagesOut,
      rttMs: this.#keepAlive.rttMs,
      callsOut: this.#out.size,
      callsIn: this.#in.size,
      queuedBytes: this.#outbox.queuedBytes,
    };
  }

  /**
   * Start a call.
   *
   * @param op operation name
   * @param body request body (msgpack-encodable)
   * @param options signal and streams
   * @returns the reply promise and the streams asked for
   */
  call(op: string, body: unknown, options: CallOptions = {}): OutgoingCall {
    const { result, st } = this.#start(op, body, options);
    const whole = options.upload instanceof Uint8Array ? options.upload : null;
    return new OutCall(result, st, whole);
  }

  /**
   * A call without streams.
   *
   * @param op operation name
   * @param body request body
   * @param options signal, time limit, label
   * @returns the reply
   * @throws {CircuitError} what the callee threw, or why the call failed
   */
  request(
    op: string,
    body: unknown,
    options: { signal?: AbortSignal; timeoutMs?: number; label?: string } = {},
  ): Promise<unknown> {
    return this.call(op, body, options).result;
  }

  /**
   * Forward a call a mux handed to its handler (this one's or another's) to this mux's
   * peer, relaying its streams message by message: no stream objects and no pipes between
   * the two connections, and each side's flow control reaches through to the other.
   * Cancelling the incoming call cancels the forwarded one; a stream that breaks on one
   * side is reset on the other.
   *
   * @param call the incoming call
   * @param body the request body to send on
   * @returns the peer's reply, once the streams are relayed too
   * @throws {CircuitError} what the peer threw, or why the call failed
   */
  async forward(call: IncomingCall, body: unknown): Promise<unknown> {
    // The call's own stream halves: only a call a mux made has them.
    if (!(call instanceof InCall)) {
      throw new CircuitError("bad request", "Only a call a mux received can be forwarded");
    }
    const src = call;
    const { result, st } = this.#start(call.op, body, {
      signal: call.signal,
      upload: src.up !== null,
      download: src.down !== null,
    });
    const relays = relayCall(src, st);
    try {
      return await result;
    } finally {
      await Promise.all(relays);
    }
  }

  /**
   * Queue one message; false when it cannot be sent (too large, or closed).
   *
   * @param msg the message array
   * @returns whether it was queued
   * @throws {Error} when a field cannot be encoded
   */
  send(msg: Message): boolean {
    if (this.#closed) return false;
    const bytes = encodeMessage(msg);
    if (bytes.length > this.#o.config.maxFrameBytes) return false;
    this.#outbox.push(bytes);
    return true;
  }

  /**
   * Queue a DATA message of a stream. Large bytes are not copied: the returned promise
   * resolves once they are sealed into a frame (or the mux closed), and the caller must
   * not change them before. Small ones are copied at once (returns true).
   *
   * @param id the call
   * @param bytes the chunk
   * @returns true, or a promise for when the bytes may be reused
   */
  sendData(id: number, bytes: Uint8Array): true | Promise<void> {
    if (bytes.length < DIRECT_DATA_BYTES || this.#closed) {
      this.send([Tag.DATA, id, bytes]);
      return true;
    }
    return this.#outbox.pushData(id, bytes);
  }

  /**
   * Feed one frame body read from the connection.
   *
   * @param body the frame's plaintext
   */
  receive(body: Uint8Array): void {
    if (this.#closed) return;
    this.#keepAlive.received();
    this.#framesIn++;
    let msgs: unknown[];
    try {
      msgs = decodeFrame(body);
    } catch (err) {
      return this.#violation(`undecodable frame (${(err as Error).message})`);
    }
    for (const m of msgs) {
      if (this.#closed) return;
      const bad = checkMessage(m);
      if (bad !== null) return this.#violation(bad);
      this.#dispatch(m as Message);
    }
  }

  /**
   * Close the mux: every call and stream fails with `reason`.
   *
   * @param reason why; defaults to a plain `closed`
   */
  close(reason?: CircuitError): void {
    if (this.#closed) return;
    const err = reason ?? new CircuitError("closed", `Connection to ${this.#o.peerName} closed`);
    this.#closed = err;
    this.#keepAlive.stop();
    this.#deadlines.clear();
    for (const [id, st] of this.#out) {
      // Say which call the lost connection cut, when the caller named it.
      const e = st.label
        ? new CircuitError(err.code, `${st.label}: ${err.message}`, { cause: err })
        : err;
      st.up?.fail(e);
      st.down?.fail(e);
      this.#settleOut(id, st, e);
    }
    for (const st of this.#in.values()) {
      st.abort.abort(err);
      st.up?.fail(err);
      st.down?.fail(err);
    }
    this.#out.clear();
    this.#in.clear();
    this.#outbox.close();
    this.#o.onClose(err);
  }

  /**
   * Send GOAWAY with a reason, let it be written (at most {@linkcode GOAWAY_FLUSH_MS}),
   * then close.
   *
   * @param message the reason, for the peer's log
   */
  async goAway(message: string): Promise<void> {
    if (this.#closed) return;
    this.send([Tag.GOAWAY, 0, message]);
    let timer: number | undefined;
    const late = new Promise<void>((
      r,
    ) => (timer = setTimeout(r, GOAWAY_FLUSH_MS) as unknown as number));
    await Promise.race([this.#outbox.drained(), late]);
    clearTimeout(timer);
    this.close(new CircuitError("closed", `Connection to ${this.#o.peerName} closed: ${message}`));
  }

  /** Register a call and send its request; `st` is null when it failed at once. */
  #start(
    op: string,
    body: unknown,
    options: CallOptions,
  ): { result: Promise<unknown>; st: OutState | null } {
    const id = this.#nextId;
    this.#nextId += 2;
    const { signal } = options;
    const label = options.label ?? `Call "${op}"`;
    const { promise: result, resolve, reject } = Promise.withResolvers<unknown>();
    result.catch(() => {}); // callers that only use streams must not see unhandled rejections
    if (this.#closed) {
      reject(this.#closed);
      return { result, st: null };
    }
    if (signal?.aborted) {
      reject(abortError(signal, label));
      return { result, st: null };
    }
    const st: OutState = {
      resolve,
      reject,
      settled: false,
      up: null,
      down: null,
      unlisten: () => {},
      deadline: Infinity,
      label: options.label,
    };
    const gc = () => this.#gcOut(id, st);
    if (options.upload) st.up = new SendStream(this, id, Dir.UP, this.#o.config.maxChunkBytes, gc);
    if (options.download) st.down = new RecvStream(this, id, Dir.DOWN, gc);
    if (signal) {
      const onAbort = () => this.#cancelOut(id, st, abortError(signal, label));
      signal.addEventListener("abort", onAbort, { once: true });
      st.unlisten = () => signal.removeEventListener("abort", onAbort);
    }
    const ms = options.timeoutMs ?? 0;
    if (ms > 0) {
      st.deadline = performance.now() + ms;
      st.timeout = () => new CircuitError("timeout", `${label} timed out after ${ms} ms`);
      this.#deadlines.schedule(st.deadline);
    }
    this.#out.set(id, st);
    const flags = (options.upload ? Flag.UPLOAD : 0) | (options.download ? Flag.DOWNLOAD : 0);
    let sent: boolean;
    try {
      sent = this.send([Tag.REQ, id, op, body, flags]);
    } catch (err) {
      // A body msgpack cannot encode (a symbol, a cycle, an integer past 64 bits).
      const why = err instanceof Error ? err.message : String(err);
      const bad = new CircuitError("bad request", `${label}: arguments cannot be sent: ${why}`);
      this.#settleOut(id, st, bad);
      return { result, st };
    }
    if (!sent) {
      this.#settleOut(id, st, new CircuitError("bad request", `${label}: request is too large`));
    }
    return { result, st };
  }

  #violation(what: string): void {
    this.#o.log?.(`closing connection to ${this.#o.peerName}: protocol violation: ${what}`);
    void this.goAway(`protocol violation: ${what}`);
  }

  #mine(id: number): boolean {
    return (id & 1) === (this.#o.parity & 1);
  }

  /** Route a well-formed message (see `checkMessage`) to its handler. */
  #dispatch(m: Message): void {
    const id = m[1] as number;
    switch (m[0]) {
      case Tag.REQ:
        return this.#handleReq(id, m[2] as string, m[3], m[4]);
      case Tag.RES:
        return this.#handleRes(id, m[2], m[3]);
      case Tag.CANCEL:
        return this.#handleCancel(id);
      case Tag.DATA:
        return this.#handleData(id, m[2] as Uint8Array);
      case Tag.CREDIT:
        return this.#handleCredit(id, m[2] as number);
      case Tag.END:
        return this.#handleEnd(id);
      case Tag.RESET:
        return this.#handleReset(id, m[2]);
      case Tag.PING:
        this.send([Tag.PONG, 0]);
        return;
      case Tag.PONG:
        return this.#keepAlive.pong();
      case Tag.GOAWAY:
        this.close(
          new CircuitError("closed", `${this.#o.peerName} closed the connection: ${String(m[2])}`),
        );
        return;
    }
  }

  #handleReq(id: number, op: string, body: unknown, flags: unknown): void {
    if (this.#mine(id) || this.#in.has(id)) return this.#violation(`bad request id ${id}`);
    const f = typeof flags === "number" ? flags : 0;
    const st: InState = { abort: new AbortController(), up: null, down: null, replied: false };
    const gc = () => this.#gcIn(id, st);
    if (f & Flag.UPLOAD) st.up = new RecvStream(this, id, Dir.UP, gc);
    if (f & Flag.DOWNLOAD) {
      st.down = new SendStream(this, id, Dir.DOWN, this.#o.config.maxChunkBytes, gc);
    }
    this.#in.set(id, st);
    const handler = this.#o.handler;
    const call = new InCall(op, body, st);
    const run = handler
      ? Promise.resolve().then(() => handler(call))
      : Promise.reject(new CircuitError("bad request", "This endpoint serves no calls"));
    run.then(
      (value) => this.#reply(id, st, null, value),
      (err) => this.#reply(id, st, toWireError(err), null),
    );
  }

  #reply(id: number, st: InState, err: unknown, value: unknown): void {
    st.replied = true;
    if (this.#in.get(id) !== st) return; // canceled or closed meanwhile
    // The call ends with its handler: a stream it left open is reset, so the caller's
    // reader or writer fails instead of waiting forever.
    if ((st.up && !st.up.done) || (st.down && !st.down.done)) {
      const over = new CircuitError("closed", "The call ended before its stream did");
      st.up?.reset(over);
      st.down?.reset(over);
    }
    if (!this.send([Tag.RES, id, err, value ?? null])) {
      const tooLarge = { code: "bad request", message: "Reply is too large to send" };
      this.send([Tag.RES, id, tooLarge, null]);
    }
    this.#gcIn(id, st);
  }

  #handleRes(id: number, err: unknown, value: unknown): void {
    const st = this.#out.get(id);
    if (!st || st.settled) return; // late reply to a canceled call
    this.#settleOut(id, st, err ? fromWireError(err) : null, value);
  }

  #handleCancel(id: number): void {
    const st = this.#in.get(id);
    if (!st) return;
    this.#in.delete(id);
    const err = new CircuitError("aborted", "The caller canceled the call");
    st.abort.abort(err);
    st.up?.fail(err);
    st.down?.fail(err);
  }

  #handleData(id: number, chunk: Uint8Array): void {
    const side = this.#mine(id) ? this.#out.get(id)?.down : this.#in.get(id)?.up;
    if (side && !side.data(chunk)) this.#violation(`stream ${id} overran its credit`);
  }

  #handleCredit(id: number, n: number): void {
    const side = this.#mine(id) ? this.#out.get(id)?.up : this.#in.get(id)?.down;
    side?.grant(n);
  }

  #handleEnd(id: number): void {
    const side = this.#mine(id) ? this.#out.get(id)?.down : this.#in.get(id)?.up;
    side?.end();
  }

  #handleReset(id: number, dir: unknown): void {
    const st = this.#mine(id) ? this.#out.get(id) : this.#in.get(id);
    if (!st) return;
    const err = new CircuitError("closed", "The peer reset the stream");
    if (dir === Dir.UP) st.up?.fail(err);
    else st.down?.fail(err);
  }

  #cancelOut(id: number, st: OutState, err: CircuitError): void {
    if (this.#out.get(id) === st) this.send([Tag.CANCEL, id]);
    st.up?.fail(err);
    st.down?.fail(err);
    this.#settleOut(id, st, err);
    this.#out.delete(id);
  }

  /** Time out every call that is due; re-arm for the next. */
  #expire(): void {
    const next = expireDue(
      this.#out,
      performance.now(),
      (id, st) => this.#cancelOut(id, st, st.timeout!()),
    );
    if (next < Infinity && !this.#closed) this.#deadlines.schedule(next);
  }

  #settleOut(id: number, st: OutState, err: CircuitError | null, value?: unknown): void {
    if (!st.settled) {
      st.settled = true;
      if (err) st.reject(err);
      else st.resolve(value);
    }
    this.#gcOut(id, st);
  }

  #gcOut(id: number, st: OutState): void {
    if (st.settled && (st.up?.done ?? true) && (st.down?.done ?? true)) {
      st.unlisten();
      if (this.#out.get(id) === st) this.#out.delete(id);
    }
  }

  #gcIn(id: number, st: InState): void {
    if (st.replied && (st.up?.done ?? true) && (st.down?.done ?? true)) {
      if (this.#in.get(id) === st) this.#in.delete(id);
    }
  }
}
