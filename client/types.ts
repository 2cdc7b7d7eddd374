/**
 * Types shared by the client's handles, so handle modules never import each other.
 *
 * @module
 */

import type { OutgoingCall } from "../net/mux.ts";

/** Options every call takes. */
export interface CallOptions {
  /** Cancels the call; the server undoes what it had started. */
  signal?: AbortSignal;
  /**
   * Time limit in milliseconds; 0 means none.
   * @default {the client's timeoutMs}
   */
  timeoutMs?: number;
}

/** What an element handle needs from its anchor. */
export interface ElementAnchor {
  /** The absolute path. */
  readonly path: string;
  /** The element's state; null for an empty anchor. */
  peek(options?: CallOptions): Promise<unknown>;
  /** Abort and remove the element. */
  scrub(options?: CallOptions): Promise<void>;
  /** One of the element's own operations. */
  element(op: string, args: unknown, options?: CallOptions): Promise<unknown>;
  /** One of the element's own operations, with streams. */
  open(
    op: string,
    args: unknown,
    options?: CallOptions & { upload?: boolean | Uint8Array; download?: boolean },
  ): OutgoingCall;
}
