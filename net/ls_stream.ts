/**
 * The streamed form of an `ls` reply. A caller that opens a download with its `ls` gets
 * the entries there, in batches, and a reply of {@linkcode LsStreamReply}; a caller
 * without a download gets them as the reply itself, as long as they fit in one frame.
 * So a listing of any size reaches the caller, with flow control, and neither side
 * holds more than a batch of it in flight.
 *
 * A batch is `length (u32 BE) | body`, the body a msgpack array of
 * {@linkcode LsEntry} maps. Batches arrive in any order relative to each other (a
 * cluster listing interleaves servers); the reader sorts.
 *
 * @module
 */

import { Packr } from "msgpackr/pack";
import { CircuitError } from "./errors.ts";
import type { LsEntry } from "./wire/mod.ts";

/** Bytes before each batch body: its length, big-endian. */
export const LS_HEADER_BYTES = 4;

/**
 * A batch is cut once its entries reach about this many bytes, so that a batch goes in
 * one stream chunk (below `maxChunkBytes`, 64 KiB by default).
 */
export const LS_BATCH_BYTES: number = 32 * 1024;

/**
 * Largest batch body a reader accepts, in bytes: a longer length prefix fails the
 * listing instead of being buffered.
 */
export const LS_MAX_BATCH_BYTES: number = 1024 * 1024;

/** The reply of a streamed `ls`: how many entries the download carried. */
export interface LsStreamReply {
  /** Entries sent on the download, in all batches. */
  streamed: number;
}

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

/**
 * Encode entries as one batch, header included.
 *
 * @param entries the entries
 * @returns `length | msgpack body`
 */
export function encodeLsBatch(entries: LsEntry[]): Uint8Array {
  const body = packr.pack(entries);
  const out = new Uint8Array(LS_HEADER_BYTES + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, LS_HEADER_BYTES);
  return out;
}

/**
 * A rough size of an entry in a batch (UTF-16 units stand for bytes): only to decide
 * where to cut batches.
 *
 * @param e the entry
 * @returns estimated bytes
 */
export function lsEntryBytes(e: LsEntry): number {
  return e.path.length + e.kind.length + (e.error?.length ?? 0) + 24;
}

/**
 * Cut a sequence of entries into batches of about {@linkcode LS_BATCH_BYTES}: the one
 * place that decides where a listing is cut.
 *
 * @param entries any iterable of entries (a namespace walk is consumed lazily)
 * @yields each batch; the last may be empty, so a consumer always sees an end
 */
export function* lsEntryBatches(entries: Iterable<LsEntry>): Generator<LsEntry[]> {
  let batch: LsEntry[] = [];
  let size = 0;
  for (const e of entries) {
    batch.push(e);
    size += lsEntryBytes(e);
    if (size >= LS_BATCH_BYTES) {
      yield batch;
      batch = [];
      size = 0;
    }
  }
  yield batch;
}

function malformed(why: string): CircuitError {
  return new CircuitError("bad request", `The listing is malformed: ${why}`);
}

/**
 * Split a listing download into its batches, each with its header (so it can be relayed
 * as it is). Bounded: a batch longer than {@linkcode LS_MAX_BATCH_BYTES} fails.
 *
 * @param readable the download
 * @yields each batch, header included
 * @throws {CircuitError} `bad request` for an oversized or torn batch; the stream's own
 *   error when it breaks
 */
export async function* readLsBatches(
  readable: ReadableStream<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  let buf: Uint8Array = new Uint8Array(0);
  for await (const chunk of readable) {
    if (buf.length === 0) buf = chunk;
    else {
      const joined = new Uint8Array(buf.length + chunk.length);
      joined.set(buf);
      joined.set(chunk, buf.length);
      buf = joined;
    }
    for (;;) {
      if (buf.length < LS_HEADER_BYTES) break;
      const n = new DataView(buf.buffer, buf.byteOffset, LS_HEADER_BYTES).getUint32(0);
      if (n > LS_MAX_BATCH_BYTES) {
        throw malformed(`a batch of ${n} bytes is over the ${LS_MAX_BATCH_BYTES} allowed`);
      }
      if (buf.length < LS_HEADER_BYTES + n) break;
      yield buf.slice(0, LS_HEADER_BYTES + n);
      buf = buf.subarray(LS_HEADER_BYTES + n);
    }
  }
  if (buf.length) throw malformed("the stream ended inside a batch");
}

/**
 * Check one entry's shape.
 *
 * @param v a decoded value
 * @returns the entry
 * @throws {CircuitError} `bad request` when it is not an entry
 */
export function checkLsEntry(v: unknown): LsEntry {
  const e = v as Partial<LsEntry> | null;
  if (
    !e || typeof e !== "object" || typeof e.path !== "string" || typeof e.kind !== "string" ||
    (e.error !== undefined && typeof e.error !== "string")
  ) {
    throw malformed("an entry is not {path, kind, error?}");
  }
  return e.error === undefined ? { path: e.path, kind: e.kind } : {
    path: e.path,
    kind: e.kind,
    error: e.error,
  };
}

/**
 * Decode one batch.
 *
 * @param batch a batch, header included (from {@linkcode readLsBatches})
 * @returns its entries
 * @throws {CircuitError} `bad request` when it does not decode to entries
 */
export function decodeLsBatch(batch: Uint8Array): LsEntry[] {
  let v: unknown;
  try {
    v = packr.unpack(batch.subarray(LS_HEADER_BYTES));
  } catch {
    throw malformed("a batch does not decode");
  }
  if (!Array.isArray(v)) throw malformed("a batch is not an array");
  return v.map(checkLsEntry);
}
