/**
 * Types shared by the client's handles, so handle modules never import each other.
 *
 * @module
 */

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

/** Options of {@linkcode ElementAnchor.open}: {@linkcode CallOptions} and the streams wanted. */
export interface OpenOptions extends CallOptions {
  /**
   * Open an upload; bytes instead of `true` are the whole upload, sent with the request
   * (the call then has no `upload` stream). @default {false}
   */
  upload?: boolean | Uint8Array;
  /** Open a download. @default {false} */
  download?: boolean;
}

/** An element operation started with byte streams ({@linkcode ElementAnchor.open}). */
export interface StreamCall {
  /** The reply. */
  readonly result: Promise<unknown>;
  /** Bytes to the element, when an upload was asked for as `true`; close it to end it. */
  readonly upload: WritableStream<Uint8Array> | null;
  /** Bytes from the element, when a download was asked for. */
  readonly download: ReadableStream<Uint8Array> | null;
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
  open(op: string, args: unknown, options?: OpenOptions): StreamCall;
}
