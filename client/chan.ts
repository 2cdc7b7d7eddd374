/**
 * Channel handles: Go-like channels between programs on any hosts.
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";
import { type Incoming, receive, receiveAll } from "./_recv.ts";
import type { CallOptions, ElementAnchor } from "./types.ts";

/** A channel's state, as `peek` returns it. */
export interface ChanState {
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

/**
 * A channel element. A message is a whole byte stream, delivered to exactly one
 * receiver, whole or not at all.
 *
 * @example Send and receive
 * ```ts ignore
 * const ch = await client.walk(`${client.server}/jobs`).makeChan(10);
 * await ch.send(new TextEncoder().encode("build #42"));
 * console.log(new TextDecoder().decode(await ch.recv())); // "build #42"
 * await ch.close();
 * for await (const msg of ch) console.log(msg.length); // drains, then ends
 * ```
 */
export class Chan implements AsyncIterable<Uint8Array> {
  /** Where the channel lives. */
  readonly anchor: ElementAnchor;

  /**
   * Wrap an anchor that holds a channel.
   *
   * @param anchor the anchor
   */
  constructor(anchor: ElementAnchor) {
    this.anchor = anchor;
  }

  /**
   * Send one message; blocks while the buffer is full (CAP 0: until a receiver takes it).
   * If the call is aborted mid-way the message is never delivered.
   *
   * @param message bytes, text, or a stream (sent as it is read)
   * @param options signal, timeout (default none)
   * @throws {CircuitError} `closed` (`channel closed`), `aborted` (`channel aborted`),
   *   `bad request` (message too large)
   */
  async send(
    message: Uint8Array | string | ReadableStream<Uint8Array>,
    options: CallOptions = {},
  ): Promise<void> {
    const body = typeof message === "string" ? new TextEncoder().encode(message) : message;
    if (body instanceof Uint8Array) {
      // Bytes go out with the request: no stream to drive.
      await this.anchor.open("send", null, { timeoutMs: 0, ...options, upload: body }).result;
      return;
    }
    const call = this.anchor.open("send", null, { timeoutMs: 0, ...options, upload: true });
    call.result.catch(() => {});
    try {
      // A call that fails (aborted, refused, scrubbed) stops the pipe at once, even while
      // the source has nothing to read: the source is canceled and the error reported.
      const stop = new AbortController();
      call.result.catch((err) => stop.abort(err));
      await body.pipeTo(call.upload!, { signal: stop.signal });
    } catch (err) {
      await call.result; // the server's reason beats the stream's
      throw err;
    }
    await call.result;
  }

  /**
   * Receive one whole message.
   *
   * @param options signal, timeout (default none)
   * @returns the message
   * @throws {CircuitError} `closed` once closed and drained; `aborted` when scrubbed
   */
  async recv(options: CallOptions = {}): Promise<Uint8Array> {
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
    await this.anchor.element("close", null, options);
  }

  /**
   * The channel's state.
   *
   * @param options signal, timeout
   * @returns the state
   */
  async peek(options: CallOptions = {}): Promise<ChanState> {
    const v = await this.anchor.peek(options);
    if (v === null) throw new CircuitError("not found", `No element at "${this.anchor.path}"`);
    return v as ChanState;
  }

  /**
   * Abort: blocked operations fail with `channel aborted`, buffered messages are dropped,
   * the anchor is freed.
   *
   * @param options signal, timeout
   */
  async scrub(options: CallOptions = {}): Promise<void> {
    await this.anchor.scrub(options);
  }
}
