/**
 * Relaying a call's streams from one mux to another, message by message: no stream
 * objects and no pipes between the two connections. The receiving half of one hop feeds
 * the sending half of the next; the previous hop gets credit back only as bytes leave,
 * so what waits here never exceeds one window, and a stream that breaks on one side is
 * reset on the other.
 *
 * @module
 */

import { CircuitError } from "../errors.ts";
import type { RelayInput, RelayOutput } from "./port.ts";
import type { RecvStream } from "./recv_stream.ts";
import type { SendStream } from "./send_stream.ts";

/** The stream halves of a call as the callee has them. */
export interface IncomingStreams {
  /** The upload, when the call has one. */
  up: RecvStream | null;
  /** The download, when the call has one. */
  down: SendStream | null;
}

/** The stream halves of a call as the caller has them. */
export interface OutgoingStreams {
  /** The upload, when the call has one. */
  up: SendStream | null;
  /** The download, when the call has one. */
  down: RecvStream | null;
}

/**
 * Relay a forwarded call's streams: the incoming upload into the outgoing one, the
 * outgoing call's download into the incoming one. When the forwarded call could not
 * start (`to` null), the incoming streams are reset.
 *
 * @param from the incoming call's halves
 * @param to the forwarded call's halves, or null
 * @returns one promise per relayed stream, resolved when it is over
 */
export function relayCall(from: IncomingStreams, to: OutgoingStreams | null): Promise<void>[] {
  const relays: Promise<void>[] = [];
  if (to?.up && from.up) relays.push(relay(from.up, to.up));
  if (to?.down && from.down) relays.push(relay(to.down, from.down));
  if (!to) {
    const err = new CircuitError("closed", "The call could not be forwarded");
    from.up?.reset(err);
    from.down?.reset(err);
  }
  return relays;
}

/**
 * Send what `from` receives on through `to`.
 *
 * @param from the receiving half of the previous hop
 * @param to the sending half of the next hop
 * @returns resolves once `to` is over
 */
export function relay(from: RecvStream, to: SendStream): Promise<void> {
  const r = new Relay(from, to);
  to.relayFrom(r);
  from.relayTo(r);
  return to.finished;
}

/** One relayed stream: the chunks waiting for the next hop's credit. */
class Relay implements RelayInput, RelayOutput {
  #from: RecvStream;
  #to: SendStream;
  /** Chunks from the previous hop waiting for credit. */
  #queue: Uint8Array[] = [];
  /** Whether END follows them. */
  #ended = false;

  constructor(from: RecvStream, to: SendStream) {
    this.#from = from;
    this.#to = to;
  }

  data(chunk: Uint8Array): void {
    if (this.#to.failed || this.#to.done) return;
    this.#queue.push(chunk);
    this.flush();
  }

  end(): void {
    this.#ended = true;
    this.flush();
  }

  broken(err: CircuitError): void {
    this.#to.reset(err);
  }

  flush(): void {
    const to = this.#to, queue = this.#queue;
    while (queue.length > 0 && to.credit > 0 && !to.failed) {
      const c = queue[0];
      const n = to.sendRelayed(c);
      if (n === c.length) queue.shift();
      else queue[0] = c.subarray(n);
      this.#from.consumed(n);
    }
    if (this.#ended && queue.length === 0 && !to.failed && !to.done) to.endRelayed();
  }

  abandon(err: CircuitError): void {
    this.#queue = [];
    this.#from.reset(err);
  }
}
