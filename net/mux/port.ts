/**
 * The narrow interfaces between a stream half and what surrounds it: the mux it sends
 * through, and the relay it may feed or be fed by. They keep the stream modules from
 * importing the mux or each other.
 *
 * @module
 */

import type { CircuitError } from "../errors.ts";
import type { Message } from "./codec.ts";

/** How a stream half sends its messages: the mux's outgoing side. */
export interface StreamPort {
  /**
   * Queue one message.
   *
   * @param msg the message array
   * @returns false when it cannot be sent (too large, or closed)
   */
  send(msg: Message): boolean;
  /**
   * Queue a DATA message. Large bytes are not copied: the promise resolves once they are
   * sealed into a frame, and the caller must not change them before.
   *
   * @param id the call
   * @param bytes the chunk
   * @returns true, or a promise for when the bytes may be reused
   */
  sendData(id: number, bytes: Uint8Array): true | Promise<void>;
}

/** Where a receiving half in relay mode hands what it receives. */
export interface RelayInput {
  /** A chunk arrived from the previous hop. */
  data(chunk: Uint8Array): void;
  /** The previous hop ended its stream. */
  end(): void;
  /** The previous hop's stream broke. */
  broken(err: CircuitError): void;
}

/** What a sending half in relay mode tells the relay that feeds it. */
export interface RelayOutput {
  /** Credit arrived: send on what waits. */
  flush(): void;
  /** The next hop went away: drop what waits and stop the previous hop. */
  abandon(err: CircuitError): void;
}
