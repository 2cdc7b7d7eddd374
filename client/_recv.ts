/**
 * The receive protocol channels and subscriptions share: the message arrives on the
 * call's download; closing the upload afterwards acknowledges it, and only then is it
 * consumed. A receiver that stops early consumes nothing.
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";
import type { OutgoingCall } from "../net/mux/mod.ts";
import type { CallOptions, ElementAnchor, OpenOptions } from "./types.ts";

/**
 * Start an element operation and keep the mux's call behind the public
 * `StreamCall`: its body views (`up`, `down`) and `hold()`, which let a small
 * message go whole, with no stream objects.
 *
 * @param anchor the element's anchor (an `Anchor`)
 * @param op the operation
 * @param args its arguments
 * @param options streams, signal, time limit
 * @returns the call
 * @throws {CircuitError} `bad request` for an anchor whose calls are not the mux's
 */
export function openCall(
  anchor: ElementAnchor,
  op: string,
  args: unknown,
  options: OpenOptions,
): OutgoingCall {
  const call = anchor.open(op, args, options);
  if (typeof (call as Partial<OutgoingCall>).hold !== "function") {
    throw new CircuitError("bad request", `${anchor.path}: this anchor's calls have no bodies`);
  }
  return call as OutgoingCall;
}

/** One message being received ({@linkcode receive}, `Chan.recvStream`). */
export interface Incoming {
  /** The message's bytes; reading it to the end acknowledges it. */
  readable: ReadableStream<Uint8Array>;
  /**
   * The server's reply once the message is consumed (or the error). For a subscription
   * it is `{Dropped}`: how many events were dropped before this one.
   */
  done: Promise<unknown>;
}

/**
 * Receive one message from the channel or the subscription at an anchor, as a stream
 * (public as `recvStream`). Both kinds share this protocol, so a caller that does not
 * know which kind an anchor holds (the `circuit recv` command) can receive from either.
 * The message is consumed only once the stream has been read to its end; cancelling the
 * stream, the signal or the time limit before that leaves it for the next receiver.
 *
 * @example Print one message or event
 * ```ts
 * import { connect, recvStream } from "@circuit/client";
 *
 * await using client = await connect("circuit://127.0.0.1:7711/1234/Q317c2314a386a9db");
 * const m = recvStream(client.walk("/Q317c2314a386a9db/ch"), { timeoutMs: 5000 });
 * for await (const chunk of m.readable) await Deno.stdout.write(chunk);
 * console.log(await m.done); // the server's reply, once the message is consumed
 * ```
 *
 * @param anchor the anchor of a channel or a subscription
 * @param options signal, timeout (default none)
 * @returns the bytes and the reply; `done` rejects with a {@linkcode CircuitError}
 *   (`closed` for a closed channel, `not found`, `aborted`, `timeout`, …)
 */
export function receive(anchor: ElementAnchor, options: CallOptions = {}): Incoming {
  const call = openCall(anchor, "recv", null, { ...options, upload: true, download: true });
  call.result.catch(() => {});
  const ack = call.upload!;
  const from = call.download!.getReader();
  const readable = new ReadableStream<Uint8Array>({
    pull: async (c) => {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await from.read();
      } catch (err) {
        await ack.abort(err).catch(() => {});
        throw err;
      }
      if (r.done) {
        c.close();
        // The whole message is in: acknowledge it. From here the message is taken, so a
        // later abort or time limit must not cut the call before the reply says so.
        call.hold();
        await ack.close().catch(() => {});
      } else c.enqueue(r.value);
    },
    // Stopping early withdraws the acknowledgement, so the server gives the message to
    // the next receiver even when all of it had already been sent.
    cancel: async (reason) => {
      await ack.abort(reason).catch(() => {});
      await from.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
  return { readable, done: call.result };
}

/**
 * Receive one whole message.
 *
 * @param anchor the channel or subscription
 * @param options signal, timeout
 * @param request the operation and its args: `recv` by default, or a channel's `recvMany`
 * @param check runs on the bytes before they are acknowledged; if it throws, they are not
 *   (the server gives them to the next receiver) and the call fails with its error
 * @returns the bytes and the server's reply
 * @throws {CircuitError} the server's error (`channel closed`, …) rather than a stream's
 */
export async function receiveAll(
  anchor: ElementAnchor,
  options: CallOptions = {},
  request: { op: string; args: unknown } = { op: "recv", args: null },
  check?: (bytes: Uint8Array) => void,
): Promise<{ bytes: Uint8Array; reply: unknown }> {
  // The same protocol as receive(), without stream objects: the message as it comes, and
  // the acknowledgement as a bare end of the upload.
  const call = openCall(anchor, request.op, request.args, {
    ...options,
    upload: true,
    download: true,
  });
  call.result.catch(() => {});
  const { up, down } = call;
  if (!up || !down) {
    await call.result; // a call that could not start (a closed connection) says why
    throw new CircuitError("closed", "Receiving could not start");
  }
  let chunks: Uint8Array[];
  try {
    chunks = await down.whole();
  } catch (err) {
    up.reset();
    await call.result; // the call's own error explains the broken stream
    throw err instanceof CircuitError ? err : new CircuitError("closed", String(err));
  }
  const bytes = concat(chunks, chunks.reduce((n, c) => n + c.length, 0));
  try {
    check?.(bytes);
  } catch (err) {
    up.reset();
    await call.result.catch(() => {});
    throw err;
  }
  // The whole message is in: acknowledge it; the reply says it was consumed. Once the
  // acknowledgement is on its way the server may consume the message, so neither the
  // caller's signal nor its time limit may end the call now: a cut here would throw away
  // a message nobody else will get. The call ends with the reply (or the connection).
  call.hold();
  up.ack();
  const reply = await call.result;
  return { bytes, reply };
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  // A lone chunk is usually a view into a larger frame: copy it so that keeping the
  // message does not keep the frame.
  if (chunks.length === 1) {
    const c = chunks[0];
    return c.byteLength === c.buffer.byteLength ? c : c.slice();
  }
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
