/**
 * Subscription handles: the cluster's join and leave events.
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";
import type { SubscriptionReply, SubscriptionState } from "../net/wire/mod.ts";
import { receiveAll } from "./_recv.ts";
import { ElementHandle } from "./handle.ts";
import type { CallOptions } from "./types.ts";

export type { SubscriptionState };

/** One membership event. */
export interface MemberEvent {
  /** The server's path, `/X…`. */
  path: string;
  /** Events dropped just before this one because the queue was full. */
  dropped: number;
}

/**
 * A `@join` or `@leave` subscription: an async iterable of server paths. Scrubbing it
 * stops the subscription and frees the anchor.
 *
 * @example Follow servers joining
 * ```ts
 * import { connect } from "@circuit/client";
 * await using client = await connect(Deno.env.get("CIRCUIT_URL")!);
 * const joins = await client.walk(`${client.server}/joins`).makeOnJoin();
 * for await (const server of joins) console.log("joined:", server);
 * ```
 */
export class Subscription extends ElementHandle<SubscriptionState>
  implements AsyncIterable<string> {
  /**
   * The next event; waits for one.
   *
   * @param options signal, timeout (default none)
   * @returns the server's path and how many events were dropped before it
   * @throws {CircuitError} `closed` (`subscription closed`) when it is scrubbed while this
   *   waits; `not found` once it is gone; `closed` (with another message) or
   *   `unreachable` when the connection is lost
   */
  async recv(options: CallOptions = {}): Promise<MemberEvent> {
    const { bytes, reply } = await receiveAll(this.anchor, options);
    const path = new TextDecoder().decode(bytes).trimEnd();
    return { path, dropped: Number((reply as Partial<SubscriptionReply> | null)?.Dropped ?? 0) };
  }

  /**
   * Server paths as events arrive, until the subscription is scrubbed. A lost connection
   * (or any other failure) is thrown, not taken for the end.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    let got = false;
    for (;;) {
      try {
        yield (await this.recv()).path;
        got = true;
      } catch (err) {
        if (!(err instanceof CircuitError)) throw err;
        // Scrubbed while a receive waited, or between two receives after events came.
        if (err.code === "closed" && err.message === "subscription closed") return;
        if (err.code === "not found" && got) return;
        throw err;
      }
    }
  }
}
