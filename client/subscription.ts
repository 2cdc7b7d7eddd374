/**
 * Subscription handles: the cluster's join and leave events.
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";
import { receiveAll } from "./_recv.ts";
import type { CallOptions, ElementAnchor } from "./types.ts";

/** A subscription's state, as `peek` returns it. */
export interface SubscriptionState {
  /** `join` or `leave`. */
  Source: "join" | "leave";
  /** Events waiting. */
  Pending: number;
  /** Scrubbed. */
  Closed: boolean;
}

/** One membership event. */
export interface MemberEvent {
  /** The server's path, `/X…`. */
  path: string;
  /** Events dropped just before this one because the queue was full. */
  dropped: number;
}

/**
 * A `@join` or `@leave` subscription: an async iterable of server paths.
 *
 * @example Follow servers joining
 * ```ts ignore
 * const joins = await client.walk(`${client.server}/joins`).makeOnJoin();
 * for await (const server of joins) console.log("joined:", server);
 * ```
 */
export class Subscription implements AsyncIterable<string> {
  /** Where the subscription lives. */
  readonly anchor: ElementAnchor;

  /**
   * Wrap an anchor that holds a subscription.
   *
   * @param anchor the anchor
   */
  constructor(anchor: ElementAnchor) {
    this.anchor = anchor;
  }

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
    return { path, dropped: Number((reply as { Dropped?: number } | null)?.Dropped ?? 0) };
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

  /**
   * The subscription's state.
   *
   * @param options signal, timeout
   * @returns the state
   */
  async peek(options: CallOptions = {}): Promise<SubscriptionState> {
    const v = await this.anchor.peek(options);
    if (v === null) throw new CircuitError("not found", `No element at "${this.anchor.path}"`);
    return v as SubscriptionState;
  }

  /**
   * Stop the subscription and free the anchor.
   *
   * @param options signal, timeout
   */
  async scrub(options: CallOptions = {}): Promise<void> {
    await this.anchor.scrub(options);
  }
}
