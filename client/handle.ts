/**
 * The base of every element handle: what each kind's handle does alike. A handle wraps
 * an anchor; its `peek` fails with `not found` on an empty anchor, and its `scrub`
 * removes the element. Kinds add their own operations (named in `net/wire/`).
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";
import type { CallOptions, ElementAnchor } from "./types.ts";

/**
 * An element handle of any kind, whose `peek` returns `State`.
 *
 * @example Peek and scrub whatever is at an anchor
 * ```ts
 * import { connect } from "@circuit/client";
 * await using client = await connect(Deno.env.get("CIRCUIT_URL")!);
 * const proc = client.walk(`${client.server}/job`).proc();
 * console.log((await proc.peek()).Phase); // an ElementHandle<ProcState>
 * await proc.scrub();
 * ```
 *
 * @typeParam State what `peek` returns for the kind
 */
export class ElementHandle<State> {
  /** Where the element lives. */
  readonly anchor: ElementAnchor;

  /**
   * Wrap an anchor that holds (or will hold) an element of the handle's kind; nothing is
   * sent until a method is called.
   *
   * @param anchor the anchor
   */
  constructor(anchor: ElementAnchor) {
    this.anchor = anchor;
  }

  /**
   * The element's state now.
   *
   * @param options signal, timeout
   * @returns the state
   * @throws {CircuitError} `not found` when the anchor has no element; `unreachable`,
   *   `timeout`, `aborted`
   */
  async peek(options: CallOptions = {}): Promise<State> {
    const v = await this.anchor.peek(options);
    if (v === null) throw new CircuitError("not found", `No element at "${this.anchor.path}"`);
    return v as State;
  }

  /**
   * Abort the element (what that means is the kind's: a process is killed, a channel's
   * blocked operations fail) and free the anchor; nothing happens on an empty anchor.
   *
   * @param options signal, timeout
   * @throws {CircuitError} `unreachable`, `timeout`, `aborted`
   */
  async scrub(options: CallOptions = {}): Promise<void> {
    await this.anchor.scrub(options);
  }
}
