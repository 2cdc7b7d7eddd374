/**
 * The one error type that leaves circuit: a closed set of codes, one sentence, and
 * the original error as `cause`.
 *
 * @module
 */

/** The closed set of error codes every circuit failure maps to. */
export type ErrorCode =
  | "not found"
  | "busy"
  | "auth"
  | "unreachable"
  | "timeout"
  | "bad request"
  | "closed"
  | "aborted";

/** Every {@linkcode ErrorCode}, in the order the docs list them. */
export const ERROR_CODES: readonly ErrorCode[] = Object.freeze([
  "not found",
  "busy",
  "auth",
  "unreachable",
  "timeout",
  "bad request",
  "closed",
  "aborted",
]);

const CODES: ReadonlySet<string> = new Set<string>(ERROR_CODES);

/**
 * A circuit failure: `code` says what kind, `message` is one human sentence.
 *
 * @example Telling a missing element from a dead server
 * ```ts
 * import { CircuitError } from "./errors.ts";
 * const err = new CircuitError("not found", "server \"X0000000000000001\" is not a member");
 * console.log(err.code === "not found"); // true
 * ```
 */
export class CircuitError extends Error {
  /** What kind of failure this is. */
  readonly code: ErrorCode;

  /**
   * Make an error.
   *
   * @param code one of the eight codes
   * @param message one sentence naming the action, the state and the value
   * @param options `cause`: the underlying error
   */
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CircuitError";
    this.code = code;
  }
}

/** The shape an error takes on the wire. */
export interface WireError {
  /** The error code. */
  code: ErrorCode;
  /** The human sentence. */
  message: string;
}

/**
 * Turn anything thrown into a {@linkcode WireError}; unknown errors become
 * `bad request` so a handler bug never crashes the server.
 *
 * @param err what was thrown
 * @returns the wire form
 */
export function toWireError(err: unknown): WireError {
  if (err instanceof CircuitError) return { code: err.code, message: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { code: "bad request", message };
}

/**
 * Rebuild a {@linkcode CircuitError} from its wire form, tolerating garbage.
 *
 * @param wire what the peer sent
 * @returns the error
 */
export function fromWireError(wire: unknown): CircuitError {
  const w = wire as Partial<WireError> | null;
  const code = typeof w?.code === "string" && CODES.has(w.code)
    ? w.code as ErrorCode
    : "bad request";
  const message = typeof w?.message === "string" ? w.message : "Peer sent a malformed error";
  return new CircuitError(code, message);
}

/**
 * Map an abort reason to a CircuitError: a `TimeoutError` becomes `timeout`,
 * anything else `aborted`.
 *
 * @param signal the aborted signal
 * @param what the action that was cut short, for the message
 * @returns the error to reject with
 */
export function abortError(signal: AbortSignal, what: string): CircuitError {
  const reason = signal.reason;
  if (reason instanceof CircuitError) return reason;
  if (reason instanceof DOMException && reason.name === "TimeoutError") {
    return new CircuitError("timeout", `${what} timed out`, { cause: reason });
  }
  return new CircuitError("aborted", `${what} was aborted`, { cause: reason });
}

/**
 * What kind of value this is, for a message about a wrong argument: `number`, `null`,
 * `string`, or a class name such as `ArrayBuffer`.
 *
 * @param v the value
 * @returns its type's name
 */
export function typeName(v: unknown): string {
  if (v === null) return "null";
  if (typeof v !== "object") return typeof v;
  return (v as object).constructor?.name ?? "object";
}
