/**
 * One `ls` call: the entries on a download in batches, or (from a server from before
 * streamed listings) as the reply.
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";
import {
  checkLsEntry,
  decodeLsBatch,
  type LsStreamReply,
  readLsBatches,
} from "../net/ls_stream.ts";
import type { Mux } from "../net/mux/mod.ts";
import { type LsEntry, type LsRequest, Op } from "../net/wire/mod.ts";

/** Options of {@linkcode listOn}. */
export interface ListOptions {
  /** Cancels the listing. */
  signal?: AbortSignal;
  /** Time limit of the whole listing, in ms; 0 for none. */
  timeoutMs: number;
  /** What the call does, for error messages (`Ls /X…`). */
  label: string;
}

/**
 * List anchors over one connection, unsorted.
 *
 * @param mux the connection
 * @param body the request
 * @param options signal, time limit, label
 * @returns the entries, in the order they came
 * @throws {CircuitError} the call's error; `bad request` for a listing that does not
 *   parse; `closed` when fewer entries arrived than the server sent
 */
export async function listOn(
  mux: Mux,
  body: LsRequest,
  options: ListOptions,
): Promise<LsEntry[]> {
  const { signal, timeoutMs, label } = options;
  // The entries come on a download, in batches, however many there are; a server from
  // before streamed listings replies with them instead (and resets the download).
  // A listing that cannot be read stops the call, rather than leave the server waiting.
  const stop = new AbortController();
  const call = mux.call(Op.LS, body, {
    signal: signal ? AbortSignal.any([signal, stop.signal]) : stop.signal,
    timeoutMs,
    download: true,
    label,
  });
  const streamed: LsEntry[] = [];
  let unreadable: unknown = null;
  const reading = (async () => {
    for await (const batch of readLsBatches(call.download!)) {
      for (const e of decodeLsBatch(batch)) streamed.push(e);
    }
  })();
  reading.catch((err) => {
    if (err instanceof CircuitError && err.code === "bad request") {
      unreadable = err;
      stop.abort(err);
    }
  });
  try {
    const reply = await call.result;
    if (Array.isArray(reply)) return reply.map(checkLsEntry);
    await reading;
    const n = (reply as Partial<LsStreamReply> | null)?.streamed;
    if (n !== streamed.length) {
      throw new CircuitError(
        "closed",
        `${label} failed: ${streamed.length} entries arrived of ${String(n)} sent`,
      );
    }
    return streamed;
  } catch (err) {
    throw unreadable ?? err;
  }
}
