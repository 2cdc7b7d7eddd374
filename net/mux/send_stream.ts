/**
 * The sending half of a byte stream: sends only what the receiver has granted, as a
 * `WritableStream`, as whole bytes at once, or as a relay hands it chunks. It is the
 * {@linkcode Outbound} its holder gets.
 *
 * @module
 */

import { CircuitError, typeName } from "../errors.ts";
import type { Body, Outbound } from "./body.ts";
import { type Direction, INITIAL_WINDOW_BYTES, NO_BYTES, Tag } from "./codec.ts";
import type { RelayOutput, StreamPort } from "./port.ts";

/** The sending half of a byte stream. */
export class SendStream implements Outbound {
  /** Bytes the receiver has granted and not yet been sent. */
  credit: number = INITIAL_WINDOW_BYTES;
  /** Whether the stream is over: ended, failed or reset. */
  done = false;
  #wake: (() => void) | null = null;
  #error: CircuitError | null = null;
  #writable: WritableStream<Uint8Array> | null = null;

  #port: StreamPort;
  #id: number;
  #dir: Direction;
  #chunkBytes: number;
  #onDone: () => void;
  /** Relay mode: the relay that feeds this stream. */
  #relay: RelayOutput | null = null;
  /** Made when someone waits for the stream to be over. */
  #finished: PromiseWithResolvers<void> | undefined;

  /**
   * @param port where the stream's messages go
   * @param id the call
   * @param dir which of the call's streams this is
   * @param chunkBytes most bytes in one DATA message
   * @param onDone called once, when the stream is over
   */
  constructor(
    port: StreamPort,
    id: number,
    dir: Direction,
    chunkBytes: number,
    onDone: () => void,
  ) {
    this.#port = port;
    this.#id = id;
    this.#dir = dir;
    this.#chunkBytes = chunkBytes;
    this.#onDone = onDone;
  }

  /** Whether the stream failed (the receiver went away, or it was reset). */
  get failed(): boolean {
    return this.#error !== null;
  }

  /** The stream's writer side, made on first use (a whole upload never needs one). */
  get stream(): WritableStream<Uint8Array> {
    return this.#writable ??= this.#makeWritable();
  }

  #makeWritable(): WritableStream<Uint8Array> {
    return new WritableStream<Uint8Array>({
      write: (chunk) => this.#write(chunk),
      close: () => {
        if (this.#error) throw this.#error;
        this.#sendEnd();
      },
      abort: () => {
        if (!this.#error) this.#port.send([Tag.RESET, this.#id, this.#dir]);
        this.fail(new CircuitError("aborted", "Stream was aborted by the writer"));
        this.#finish();
      },
    });
  }

  async #write(chunk: Uint8Array): Promise<void> {
    if (!(chunk instanceof Uint8Array)) {
      // Reset the stream for both ends, so the callee is not left waiting for the rest
      // of an upload that will never come.
      const err = new CircuitError(
        "bad request",
        `A byte stream takes Uint8Array chunks, not ${typeName(chunk)}`,
      );
      this.reset(err);
      throw err;
    }
    let off = 0;
    let unsealed: Promise<void> | null = null;
    while (off < chunk.length) {
      while (this.credit <= 0 && !this.#error) {
        await new Promise<void>((r) => (this.#wake = r));
      }
      if (this.#error) throw this.#error;
      const n = Math.min(this.credit, this.#chunkBytes, chunk.length - off);
      const sealed = this.#port.sendData(this.#id, chunk.subarray(off, off + n));
      if (sealed !== true) unsealed = sealed;
      this.credit -= n;
      off += n;
    }
    // The chunk is the writer's again once its last uncopied piece is sealed into a
    // frame (the outbox is sealed in order, so the earlier ones are too).
    if (unsealed) await unsealed;
  }

  /**
   * Send `body` as the whole stream, then the END: at once when it is bytes that fit one
   * chunk within the credit, else through the writable with flow control.
   *
   * @param body the whole content
   * @throws {CircuitError} when the stream breaks before all of it is sent
   */
  async send(body: Body): Promise<void> {
    if (body instanceof ReadableStream) return await body.pipeTo(this.stream);
    if (this.sendWhole(body)) return;
    const w = this.stream.getWriter();
    const wrote = w.write(body), closed = w.close();
    await Promise.all([wrote, closed]);
  }

  /**
   * End the stream now with no bytes (an acknowledgement), with no writable.
   *
   * @returns false, and nothing sent, when the writable is in use or the stream is over
   */
  ack(): boolean {
    return this.sendWhole(NO_BYTES);
  }

  /**
   * Send `bytes` and the END at once, with no writable: a whole upload, a whole download
   * or an empty acknowledgement.
   *
   * @param bytes the whole stream
   * @returns false, and nothing sent, when the writable is in use or the bytes do not fit
   *   one chunk within the credit
   */
  sendWhole(bytes: Uint8Array): boolean {
    if (this.#writable || this.done || this.#error) return false;
    if (bytes.length > this.credit || bytes.length > this.#chunkBytes) return false;
    if (bytes.length > 0) this.#port.send([Tag.DATA, this.#id, bytes]);
    this.credit -= bytes.length;
    this.#sendEnd();
    return true;
  }

  /**
   * The receiver granted `n` more bytes.
   *
   * @param n bytes granted
   */
  grant(n: number): void {
    this.credit += n;
    this.#wake?.();
    this.#wake = null;
    this.#relay?.flush();
  }

  /**
   * Relay mode: `relay` feeds this stream from now on (see `relay.ts`).
   *
   * @param relay the relay
   */
  relayFrom(relay: RelayOutput): void {
    this.#relay = relay;
  }

  /**
   * Relay mode: send as much of `chunk` as the credit and the chunk size allow. Relayed
   * bytes are views of frames read off another connection, never reused: they are not
   * waited for to be sealed.
   *
   * @param chunk bytes from the previous hop
   * @returns how many bytes of it were sent
   */
  sendRelayed(chunk: Uint8Array): number {
    const n = Math.min(this.credit, this.#chunkBytes, chunk.length);
    void this.#port.sendData(this.#id, n === chunk.length ? chunk : chunk.subarray(0, n));
    this.credit -= n;
    return n;
  }

  /** Relay mode: the previous hop's stream ended and everything is sent: END. */
  endRelayed(): void {
    this.#sendEnd();
  }

  /**
   * The receiver went away or the call ended: further writes fail.
   *
   * @param err what writers see
   */
  fail(err: CircuitError): void {
    if (this.#error) return;
    this.#error = err;
    this.#wake?.();
    this.#wake = null;
    this.#finish();
    // Relay mode: the previous hop's sender stops too.
    this.#relay?.abandon(err);
  }

  /**
   * Tell the receiver this stream is over without an END, then fail locally.
   *
   * @param err what writers see
   */
  reset(err: CircuitError = new CircuitError("aborted", "The sender gave up the stream")): void {
    if (this.done) return;
    this.#port.send([Tag.RESET, this.#id, this.#dir]);
    this.fail(err);
  }

  /** Resolves once the stream is over: ended, failed or reset. */
  get finished(): Promise<void> {
    if (this.done) return Promise.resolve();
    return (this.#finished ??= Promise.withResolvers<void>()).promise;
  }

  #sendEnd(): void {
    this.#port.send([Tag.END, this.#id]);
    this.#finish();
  }

  #finish(): void {
    if (this.done) return;
    this.done = true;
    this.#onDone();
    this.#finished?.resolve();
  }
}
