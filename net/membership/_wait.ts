/**
 * Waiting with a time limit and a signal. Private to the membership folder.
 *
 * @module
 */

import { abortError, CircuitError } from "../errors.ts";

/**
 * Wait for a promise, at most `ms`, and no longer than `signal` allows. Rejects at once
 * when the signal is already aborted, and stops listening when it settles.
 *
 * @param promise what to wait for
 * @param ms the time limit
 * @param signal cancels the wait
 * @param what the action, for error messages
 * @returns the promise's value
 * @throws {CircuitError} `timeout` after `ms`; `aborted` when the signal fires
 */
export function waitFor<T>(
  promise: Promise<T>,
  ms: number,
  signal: AbortSignal | undefined,
  what: string,
): Promise<T> {
  if (signal?.aborted) return Promise.reject(abortError(signal, what));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => settle(() => reject(abortError(signal!, what)));
    const timer = setTimeout(
      () => settle(() => reject(new CircuitError("timeout", `${what} timed out after ${ms} ms`))),
      ms,
    );
    signal?.addEventListener("abort", onAbort, { once: true });
    const settle = (fn: () => void) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      fn();
    };
    promise.then((v) => settle(() => resolve(v)), (err) => settle(() => reject(err)));
  });
}
