/**
 * The receiving half of a byte stream: takes DATA within the credit it granted, and hands
 * the bytes on as a `ReadableStream`, as a whole once it has ended, or to a relay. Credit
 * goes back to the sender as bytes leave. It is the {@linkcode Inbound} its holder gets.
 *
 * @module
 */

import { CircuitError } from "../errors.ts";
import { type Body, type Inbound, joinChunks } from "./body.ts";
import { type Direction, INITIAL_WINDOW_BYTES, Tag } from "./codec.ts";
import type { RelayInput, StreamPort } from "./port.ts";

/** The receiving half of a byte stream. */
export class RecvStream implements Inbound {
  /** Bytes the sender may still send. */
  window: number = INITIAL_WINDOW_BYTES;
  /** Whether the stream is over: its bytes delivered (or dropped) and its end seen. */
  done = false;
  #queue: Uint8Array[] = [];
  #ended = false;
  #grant = 0;
  #error: CircuitError | null = null;
  /** Set once the readable exists (it is made on first use). */
  #ctrl: ReadableStreamDefaultController<Uint8Array> | undefined;
  #readable: ReadableStream<Uint8Array> | undefined;
  #waiting = false;
  /** Relay mode: where the bytes go instead of the readable. */
  #sink: RelayInput | null = null;
  /** Whether any bytes arrived, and who waits for the end of a signal-only stream. */
  #sawData = false;
  #over: PromiseWithResolvers<boolean> | undefined;
  /** Whole mode: who waits for all the bytes. */
  #whole: PromiseWithResolvers<Uint8Array[]> | undefined;

  #port: StreamPort;
  #id: number;
  #dir: Direction;
  #onDone: () => void;

  /**
   * @param port where the stream's messages (CREDIT, RESET) go
   * @param id the call
   * @param dir which of the call's streams this is
   * @param onDone called once, when the stream is over
   */
  constructor(port: StreamPort, id: number, dir: Direction, onDone: () => void) {
    this.#port = port;
    this.#id = id;
    this.#dir = dir;
    this.#onDone = onDone;
  }

  /**
   * The bytes as a stream, made on first use: a call whose upload is taken whole, only
   * awaited as an acknowledgement, or relayed never needs one. Bytes that arrived before
   * are read first; a stream already over reads as closed, or as its error.
   */
  get stream(): ReadableStream<Uint8Array> {
    if (this.#readable) return this.#readable;
    const rs = new ReadableStream<Uint8Array>({
      start: (c) => {
        this.#ctrl = c;
      },
      pull: () => {
        if (!this.#deliver()) this.#waiting = true;
      },
      cancel: () => {
        if (this.done) return;
        this.#port.send([Tag.RESET, this.#id, this.#dir]);
        this.#finish();
      },
    }, { highWaterMark: 0 });
    if (this.done) {
      if (this.#error) this.#ctrl!.error(this.#error);
      else this.#ctrl!.close();
    }
    return this.#readable = rs;
  }

  /**
   * DATA arrived.
   *
   * @param chunk its bytes
   * @returns false when the sender overran its credit
   */
  data(chunk: Uint8Array): boolean {
    if (this.done || this.#error) return true;
    this.window -= chunk.length;
    if (this.window < 0) return false;
    this.#sawData = true;
    this.#over?.resolve(false); // a signal-only stream that carries bytes is no signal
    if (this.#sink) this.#sink.data(chunk);
    else if (this.#whole) {
      this.#queue.push(chunk);
      this.consumed(chunk.length); // taken as it comes
    } else {
      this.#queue.push(chunk);
      if (this.#waiting) this.#deliver();
    }
    return true;
  }

  /** END arrived. */
  end(): void {
    if (this.done) return;
    this.#ended = true;
    if (this.#whole) {
      this.#whole.resolve(this.#queue.splice(0));
      this.#finish();
    } else if (this.#sink) {
      this.#sink.end();
      this.#finish();
    } else if (this.#waiting || this.#queue.length === 0) this.#deliver();
  }

  /**
   * The stream broke: bytes already received are still delivered, then `err`.
   *
   * @param err what the reader sees
   */
  fail(err: CircuitError): void {
    if (this.done || this.#error) return;
    this.#error = err;
    this.#over?.resolve(false);
    if (this.#whole) {
      this.#whole.reject(err); // a broken message is no message
      this.#finish();
    } else if (this.#sink) {
      this.#finish();
      this.#sink.broken(err); // the next hop's receiver learns the stream broke
    } else if (this.#queue.length === 0) this.#deliver();
  }

  /**
   * Relay mode (see `relay.ts`): bytes go to `sink` from now on, those already queued
   * first; the readable is never used.
   *
   * @param sink the relay
   */
  relayTo(sink: RelayInput): void {
    this.#sink = sink;
    for (const c of this.#queue.splice(0)) sink.data(c);
    if (this.#error) {
      this.#finish();
      sink.broken(this.#error);
    } else if (this.#ended) {
      sink.end();
      this.#finish();
    }
  }

  /**
   * The whole content when all of it has arrived unread, else the stream.
   *
   * @returns the bytes, or {@linkcode RecvStream.stream}
   */
  body(): Body {
    const chunks = this.takeWhole();
    return chunks ? joinChunks(chunks) : this.stream;
  }

  /**
   * The whole stream, if it has ended and nobody reads the readable.
   *
   * @returns its chunks, or null
   */
  takeWhole(): Uint8Array[] | null {
    if (!this.#ended || this.#error || this.#sink || this.#readable?.locked) return null;
    const chunks = this.#queue.splice(0);
    if (!this.done) {
      this.#ctrl?.close(); // a late reader finds it over, not waiting
      this.#finish();
    }
    return chunks;
  }

  /** Whether the stream object or a relay has the bytes: they cannot be taken whole. */
  get claimed(): boolean {
    return this.#readable !== undefined || this.#sink !== null;
  }

  /**
   * The whole stream once it has ended; its bytes are taken as they come, so the sender
   * is never stalled.
   *
   * @returns its chunks
   * @throws {CircuitError} its error; `bad request` when the stream object or a relay
   *   has it
   */
  whole(): Promise<Uint8Array[]> {
    if (this.claimed) {
      return Promise.reject(
        new CircuitError("bad request", "The stream is being read: it cannot be taken whole"),
      );
    }
    if (this.#whole) return this.#whole.promise;
    if (this.#error) return Promise.reject(this.#error);
    if (this.done) return Promise.resolve(this.#queue.splice(0)); // ended, nothing queued
    if (this.#ended) {
      const chunks = this.#queue.splice(0);
      this.#finish();
      return Promise.resolve(chunks);
    }
    this.#whole = Promise.withResolvers<Uint8Array[]>();
    let queued = 0;
    for (const c of this.#queue) queued += c.length;
    if (queued > 0) this.consumed(queued);
    return this.#whole.promise;
  }

  /**
   * For a stream that is only a signal (an acknowledgement); reads nothing.
   *
   * @returns true once it ends having carried no bytes, false if it breaks or carries some
   */
  acked(): Promise<boolean> {
    if (this.#sawData || this.#error) return Promise.resolve(false);
    if (this.done) return Promise.resolve(this.#ended);
    return (this.#over ??= Promise.withResolvers<boolean>()).promise;
  }

  /**
   * `n` bytes are gone from here (read, collected, or sent on by a relay): return them to
   * our sender as credit once half a window has gathered.
   *
   * @param n bytes gone
   */
  consumed(n: number): void {
    this.#grant += n;
    if (this.#grant >= INITIAL_WINDOW_BYTES / 2 && !this.#ended && !this.#error && !this.done) {
      this.#port.send([Tag.CREDIT, this.#id, this.#grant]);
      this.window += this.#grant;
      this.#grant = 0;
    }
  }

  /**
   * Tell the sender to stop, then fail locally.
   *
   * @param err what the reader sees
   */
  reset(err: CircuitError = new CircuitError("aborted", "The receiver gave up the stream")): void {
    if (this.done) return;
    this.#port.send([Tag.RESET, this.#id, this.#dir]);
    this.#queue = [];
    this.fail(err);
    if (!this.done) {
      // It had failed earlier with bytes still unread: nobody will read them now.
      this.#ctrl?.error(err);
      this.#finish();
    }
  }

  #deliver(): boolean {
    if (!this.#ctrl) {
      // No readable yet: once nothing is left to hand over, the stream is simply over.
      if (this.#queue.length === 0 && (this.#ended || this.#error)) {
        this.#finish();
        return true;
      }
      return false;
    }
    const chunk = this.#queue.shift();
    if (chunk) {
      this.#waiting = false;
      this.#ctrl.enqueue(chunk);
      this.consumed(chunk.length);
      return true;
    }
    if (this.#error) {
      this.#ctrl.error(this.#error);
      this.#finish();
      return true;
    }
    if (this.#ended) {
      this.#ctrl.close();
      this.#finish();
      return true;
    }
    return false;
  }

  #finish(): void {
    this.done = true;
    this.#queue = [];
    this.#onDone();
    this.#over?.resolve(this.#ended && !this.#error && !this.#sawData);
  }
}
