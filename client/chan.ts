/**
 * Channel handles: Go-like channels between programs on any hosts.
 *
 * @module
 */

import { abortError, CircuitError, fromWireError, typeName } from "../net/errors.ts";
import { Slabs } from "../net/slabs.ts";
import {
  BATCH_BYTES,
  ChanOp,
  type ChanState,
  decodeRecvMany,
  type RecvManyArgs,
  type SendManyReply,
} from "../net/wire/mod.ts";
import { type Incoming, openCall, receive, receiveAll } from "./_recv.ts";
import type { OutgoingCall } from "../net/mux/mod.ts";
import { ElementHandle } from "./handle.ts";
import type { CallOptions } from "./types.ts";
import { checkTimeout } from "./_check.ts";

/** Most messages this library puts in one batch call. */
export const BATCH_LIMIT = 64;
/** Batch calls one channel handle has in flight each way. */
export const BATCHES_IN_FLIGHT = 4;
/** Promise turns a batch waits for more operations before it goes. */
const GATHER_TURNS = 8;

/** Where batched sends copy their bytes. */
const copies = new Slabs();

interface Waiting<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
}

/** A small send waiting for its batch, or a lone send waiting for those before it. */
type WaitingSend = Waiting<void> & { bytes: Uint8Array } | { open: () => void };

export type { ChanState };

/**
 * A channel element. A message is a whole byte stream, delivered to exactly one
 * receiver, whole or not at all.
 *
 * Operations a program has under way at once on one handle are batched: sends of small
 * byte arrays (up to {@linkcode BATCH_BYTES} in all) and receives that have neither a
 * signal nor a time limit share calls, up to {@linkcode BATCH_LIMIT} messages each and
 * {@linkcode BATCHES_IN_FLIGHT} calls at a time each way. Each message is admitted in the
 * order its `send` was made: a send that goes alone (a stream, bytes over the batch size,
 * or a signal or time limit) holds back the sends made after it on this handle until it
 * is done. A batch of received messages is consumed only once all of it has arrived (a
 * receiver that dies gives every message back). Scrubbing it aborts it: blocked
 * operations fail with `channel aborted`, buffered messages are dropped, the anchor is
 * freed.
 *
 * @example Send and receive
 * ```ts
 * import { connect } from "@circuit/client";
 * await using client = await connect(Deno.env.get("CIRCUIT_URL")!);
 * const ch = await client.walk(`${client.server}/jobs`).makeChan(10);
 * await ch.send(new TextEncoder().encode("build #42"));
 * console.log(new TextDecoder().decode(await ch.recv())); // "build #42"
 * await ch.close();
 * for await (const msg of ch) console.log(msg.length); // drains, then ends
 * ```
 */
export class Chan extends ElementHandle<ChanState> implements AsyncIterable<Uint8Array> {
  #sends: WaitingSend[] = [];
  #sendsInFlight = 0;
  /** Lone sends not yet done (0 or 1: each waits for the one before). */
  #lone = 0;
  #recvs: Waiting<Uint8Array>[] = [];
  #recvsInFlight = 0;
  #gathering = false;

  /**
   * Send one message; blocks while the buffer is full (CAP 0: until a receiver takes it).
   * If the call is aborted mid-way the message is never delivered.
   *
   * @param message bytes, text, or a stream (sent as it is read)
   * @param options signal, timeout (default none)
   * @throws {CircuitError} `closed` (`channel closed`), `aborted` (`channel aborted`, the
   *   signal, or the message's stream failed), `timeout`, `bad request` (message too
   *   large, not bytes, text or a byte stream, or a bad time limit)
   */
  async send(
    message: Uint8Array | string | ReadableStream<Uint8Array>,
    options: CallOptions = {},
  ): Promise<void> {
    if (
      typeof message !== "string" && !(message instanceof Uint8Array) &&
      !(message instanceof ReadableStream)
    ) {
      throw new CircuitError(
        "bad request",
        `Send ${this.anchor.path}: a message is bytes (Uint8Array), text, or a ReadableStream ` +
          `of bytes, not ${typeName(message)}`,
      );
    }
    checkTimeout(options.timeoutMs, `Send ${this.anchor.path}`);
    const body = typeof message === "string" ? new TextEncoder().encode(message) : message;
    if (body instanceof Uint8Array && batchable(options) && body.length <= BATCH_BYTES) {
      // A copy of the caller's bytes, taken now as a lone send's are: the caller may
      // reuse its buffer as soon as send returns, before the batch goes.
      const bytes = body === message ? copies.copy(body) : body;
      return new Promise<void>((resolve, reject) => {
        this.#sends.push({ bytes, resolve, reject });
        this.#gather();
      });
    }
    // A lone send goes out after the sends queued before it, and what is sent after it
    // waits until it is done: its upload may take longer than a later small batch's, and
    // the channel admits a message once all of it is in. So sends are admitted in the
    // order they were made.
    let call: OutgoingCall;
    if (this.#sends.length > 0 || this.#lone > 0) {
      const later = body instanceof Uint8Array && body === message ? copies.copy(body) : body;
      call = await this.#queueLone(later, options);
    } else call = this.#openLone(body, options);
    if (body instanceof Uint8Array) {
      await call.result;
      return;
    }
    // A call that fails (aborted, refused, scrubbed) stops the pipe at once, even while
    // the source has nothing to read: the source is canceled and the error reported.
    const stop = new AbortController();
    call.result.catch((err) => stop.abort(err));
    try {
      await body.pipeTo(call.upload!, { signal: stop.signal });
    } catch (err) {
      if (stop.signal.aborted) throw stop.signal.reason; // the server's reason first
      // The server reset the upload (it refused the message): its reply says why.
      const refused = err instanceof CircuitError && err.code === "closed";
      // Else the source failed, or gave something other than bytes: the message is
      // withdrawn (never delivered in part) and the caller hears why.
      if (!refused) call.up?.reset();
      const reason = await call.result.then(() => null, (e) => e);
      if (refused && reason) throw reason;
      if (err instanceof CircuitError) throw err;
      throw new CircuitError(
        "aborted",
        `Send ${this.anchor.path}: reading the message failed: ${
          err instanceof Error ? err.message : String(err)
        }`,
        { cause: err },
      );
    }
    await call.result;
  }

  /**
   * Queue a lone send behind the sends made before it. While it waits its signal and time
   * limit still apply: either takes it out of the queue (nothing was sent), and the time
   * it waited counts against its limit.
   */
  #queueLone(
    body: Uint8Array | ReadableStream<Uint8Array>,
    options: CallOptions,
  ): Promise<OutgoingCall> {
    const { signal, timeoutMs } = options;
    const start = performance.now();
    return new Promise<OutgoingCall>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const entry = {
        open: () => {
          const left = timeoutMs ? timeoutMs - (performance.now() - start) : 0;
          if (timeoutMs && left <= 0) return expire(); // its time ran out in the queue
          cleanup();
          try {
            resolve(this.#openLone(body, { ...options, timeoutMs: left }));
          } catch (err) {
            reject(err);
          }
        },
      };
      const drop = (err: CircuitError) => {
        cleanup();
        const i = this.#sends.indexOf(entry);
        if (i >= 0) this.#sends.splice(i, 1);
        if (body instanceof ReadableStream) body.cancel(err).catch(() => {});
        reject(err);
      };
      const expire = () =>
        drop(
          new CircuitError("timeout", `Send ${this.anchor.path} timed out after ${timeoutMs} ms`),
        );
      const onAbort = () => drop(abortError(signal!, `Send ${this.anchor.path}`));
      const cleanup = () => {
        signal?.removeEventListener("abort", onAbort);
        clearTimeout(timer);
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      if (timeoutMs) timer = setTimeout(expire, timeoutMs);
      this.#sends.push(entry);
      this.#gather();
    });
  }

  /** Open a lone send; until it is done, later sends wait (see {@linkcode Chan.send}). */
  #openLone(body: Uint8Array | ReadableStream<Uint8Array>, options: CallOptions): OutgoingCall {
    const call = this.#openSend(body, options);
    this.#lone++;
    call.result.catch(() => {}).finally(() => {
      this.#lone--;
      this.#gather();
    });
    return call;
  }

  /** Open a lone send: bytes go out with the request (no stream to drive), a stream as read. */
  #openSend(body: Uint8Array | ReadableStream<Uint8Array>, options: CallOptions): OutgoingCall {
    const upload = body instanceof Uint8Array ? body : true;
    return openCall(this.anchor, ChanOp.SEND, null, { timeoutMs: 0, ...options, upload });
  }

  /**
   * Receive one whole message. A signal or time limit that fires after the whole message
   * has arrived and been acknowledged does not cancel the receive: the message is returned
   * once the server confirms it taken (see the README).
   *
   * @param options signal, timeout (default none)
   * @returns the message
   * @throws {CircuitError} `closed` once closed and drained; `aborted` when scrubbed or
   *   by the signal; `timeout`
   */
  async recv(options: CallOptions = {}): Promise<Uint8Array> {
    checkTimeout(options.timeoutMs, `Recv ${this.anchor.path}`);
    if (batchable(options)) {
      return await new Promise<Uint8Array>((resolve, reject) => {
        this.#recvs.push({ resolve, reject });
        this.#gather();
      });
    }
    return (await receiveAll(this.anchor, options)).bytes;
  }

  /**
   * Receive one message as a stream; it is consumed once the stream is read to its end.
   *
   * @param options signal, timeout
   * @returns the stream and the call's outcome
   */
  recvStream(options: CallOptions = {}): Incoming {
    return receive(this.anchor, options);
  }

  /** Messages until the channel is closed and drained. */
  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      try {
        yield await this.recv();
      } catch (err) {
        if (err instanceof CircuitError && err.message === "channel closed") return;
        throw err;
      }
    }
  }

  /**
   * Close for sending; buffered messages can still be received.
   *
   * @param options signal, timeout
   * @throws {CircuitError} `bad request` (`channel already closed`)
   */
  async close(options: CallOptions = {}): Promise<void> {
    await this.anchor.element(ChanOp.CLOSE, null, options);
  }

  /**
   * Start batches after a few promise turns, so that operations the same turn of the
   * program makes (a loop of sends, or the next sends of senders whose batch just
   * ended) go together.
   */
  #gather(): void {
    if (this.#gathering) return;
    this.#gathering = true;
    void (async () => {
      for (let i = 0; i < GATHER_TURNS; i++) await null;
      this.#gathering = false;
      this.#startSends();
      this.#startRecvs();
    })();
  }

  #startSends(): void {
    while (this.#sends.length > 0) {
      if (this.#lone > 0) return; // everything made after a lone send waits for it
      const head = this.#sends[0];
      if ("open" in head) {
        // A lone send whose turn has come: its request goes out now, before what follows.
        this.#sends.shift();
        head.open();
        continue;
      }
      if (this.#sendsInFlight >= BATCHES_IN_FLIGHT) return;
      const batch: Array<Waiting<void> & { bytes: Uint8Array }> = [];
      let bytes = 0;
      for (let w = this.#sends[0]; batch.length < BATCH_LIMIT && w && !("open" in w);) {
        if (bytes + w.bytes.length > BATCH_BYTES) break;
        bytes += w.bytes.length;
        batch.push(w);
        this.#sends.shift();
        w = this.#sends[0];
      }
      this.#sendsInFlight++;
      // open, not element: errors keep the server's words, as a lone send's do.
      this.anchor.open(ChanOp.SEND_MANY, batch.map((w) => w.bytes), { timeoutMs: 0 }).result.then(
        (reply) =>
          settle(batch, (w, i) => {
            const { sent, refused, error } = reply as SendManyReply;
            if (i >= sent) return w.reject(fromWireError(error));
            if (refused?.index.includes(i)) return w.reject(fromWireError(refused.error));
            w.resolve();
          }),
        (err) => settle(batch, (w) => w.reject(err)),
      ).finally(() => {
        this.#sendsInFlight--;
        this.#gather();
      });
    }
  }

  #startRecvs(): void {
    while (this.#recvsInFlight < BATCHES_IN_FLIGHT && this.#recvs.length > 0) {
      const batch = this.#recvs.splice(0, BATCH_LIMIT);
      this.#recvsInFlight++;
      let messages: Uint8Array[] = [];
      // Split before acknowledging: a batch that does not parse is given back, not lost.
      // The messages are views into the batch: receiveAll copies it out of the frame, and
      // it is at most BATCH_BYTES, so keeping one message keeps no more than that.
      const split = (bytes: Uint8Array) => void (messages = decodeRecvMany(bytes));
      receiveAll(
        this.anchor,
        { timeoutMs: 0 },
        { op: ChanOp.RECV_MANY, args: { n: batch.length } satisfies RecvManyArgs },
        split,
      )
        .then(
          () => {
            // Receivers the batch had no message for wait first for the next.
            this.#recvs.unshift(...batch.slice(messages.length));
            settle(batch.slice(0, messages.length), (w, i) => w.resolve(messages[i]));
          },
          (err) => settle(batch, (w) => w.reject(err)),
        ).finally(() => {
          this.#recvsInFlight--;
          this.#gather();
        });
    }
  }
}

/**
 * Settle each waiter with `f`; should `f` throw, the waiters not yet settled get that
 * error rather than waiting forever.
 */
function settle<T, W extends Waiting<T>>(waiters: W[], f: (w: W, i: number) => void): void {
  let i = 0;
  try {
    for (; i < waiters.length; i++) f(waiters[i], i);
  } catch (err) {
    for (const w of waiters.slice(i)) w.reject(err);
  }
}

/** Whether a call may join a batch: one with neither a signal nor a time limit. */
function batchable(options: CallOptions): boolean {
  return options.signal === undefined && !options.timeoutMs;
}
