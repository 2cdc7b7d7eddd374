/**
 * Serves `ls`: of an anchor on this server, and of the cluster's root. A caller that opens
 * a download gets the entries there in batches (`net/ls_stream.ts`), with flow control,
 * so a listing of any size gets through and the server walks its tree only as fast as
 * the caller reads. A caller without a download gets one reply, refused when it would
 * pass {@linkcode LS_WHOLE_REPLY_BYTES}.
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";
import type { Mux } from "../net/mux/mod.ts";
import {
  checkLsEntry,
  decodeLsBatch,
  encodeLsBatch,
  lsEntryBatches,
  lsEntryBytes,
  type LsStreamReply,
  readLsBatches,
} from "../net/ls_stream.ts";
import { type LsEntry, type LsRequest, Op } from "../net/wire/mod.ts";
import type { Namespace } from "./namespace.ts";
import { LS_FANOUT_TIMEOUT_MS, LS_WHOLE_REPLY_BYTES } from "./config.ts";

export { LS_FANOUT_TIMEOUT_MS, LS_WHOLE_REPLY_BYTES };

/** Where a listing goes: the caller's download, or an array for one reply. */
interface Sink {
  put(entries: LsEntry[]): Promise<void>;
}

class StreamSink implements Sink {
  count = 0;
  #w: WritableStreamDefaultWriter<Uint8Array>;
  constructor(download: WritableStream<Uint8Array>) {
    this.#w = download.getWriter();
  }
  async put(entries: LsEntry[]): Promise<void> {
    if (entries.length === 0) return;
    this.count += entries.length;
    await this.#w.write(encodeLsBatch(entries));
  }
  async close(): Promise<LsStreamReply> {
    await this.#w.close();
    return { streamed: this.count };
  }
}

/** This server's own refusal of a listing too large for one reply. */
class TooLarge extends CircuitError {}

class ArraySink implements Sink {
  out: LsEntry[] = [];
  #bytes = 0;
  #what: string;
  constructor(what: string) {
    this.#what = what;
  }
  put(entries: LsEntry[]): Promise<void> {
    for (const e of entries) {
      this.#bytes += lsEntryBytes(e);
      if (this.#bytes > LS_WHOLE_REPLY_BYTES) {
        throw new TooLarge(
          "bad request",
          `The listing of ${this.#what} is too large for one reply; ` +
            "a client that streams listings (this version's) can list it",
        );
      }
      this.out.push(e);
    }
    return Promise.resolve();
  }
}

/** Feed entries to a sink in batches of about `LS_BATCH_BYTES` (`lsEntryBatches`). */
async function feed(entries: Iterable<LsEntry>, sink: Sink): Promise<void> {
  for (const batch of lsEntryBatches(entries)) await sink.put(batch);
}

/**
 * `ls` of an anchor on this server.
 *
 * @param ns the namespace
 * @param rel components after the server name
 * @param recursive every descendant
 * @param download the caller's download, when it opened one
 * @returns the entries (no download), or how many were streamed
 * @throws {CircuitError} `bad request` when the listing is too large for one reply
 */
export async function listAnchors(
  ns: Namespace,
  rel: string[],
  recursive: boolean,
  download: WritableStream<Uint8Array> | null,
): Promise<LsEntry[] | LsStreamReply> {
  if (download) {
    const sink = new StreamSink(download);
    await feed(ns.walk(rel, recursive), sink);
    return await sink.close();
  }
  const sink = new ArraySink("this server's anchors");
  await feed(ns.walk(rel, recursive), sink);
  return sink.out;
}

/** What a cluster listing needs. */
export interface ClusterListingOptions {
  /** Ids of the live members, this server's included. */
  members: string[];
  /** This server's id. */
  selfId: string;
  /** This server's anchors. */
  namespace: Namespace;
  /** Every member's anchors too, not only the members. */
  recursive: boolean;
  /** Who asked, passed on to the other servers. */
  caller: string;
  /** A connection's mux to another member. */
  peer(id: string): Promise<Mux>;
  /** The caller's download, when it opened one. */
  download: WritableStream<Uint8Array> | null;
}

/**
 * `ls /` and `ls /...`: the members, and with `recursive` each member's own recursive
 * listing, asked for in parallel ({@linkcode LS_FANOUT_TIMEOUT_MS} each). A member that
 * does not answer keeps its entry, with `error` saying why.
 *
 * @param o members, namespace, peers, download
 * @returns the entries (no download), or how many were streamed
 * @throws {CircuitError} `bad request` when the listing is too large for one reply
 */
export async function listCluster(
  o: ClusterListingOptions,
): Promise<LsEntry[] | LsStreamReply> {
  const streamSink = o.download ? new StreamSink(o.download) : null;
  const sink: Sink = streamSink ?? new ArraySink("the cluster");
  const servers: LsEntry[] = o.members.map((id) => ({ path: `/X${id}`, kind: "server" }));
  if (o.recursive) {
    await Promise.all(o.members.map(async (id, i) => {
      if (id === o.selfId) return await feed(o.namespace.walk([], true), sink);
      try {
        await listPeer(await o.peer(id), id, o.caller, sink);
      } catch (err) {
        if (err instanceof TooLarge) throw err;
        // Never drop a server's anchors silently: say which server did not answer.
        servers[i].error = err instanceof Error ? err.message : String(err);
      }
    }));
  }
  // The servers go last, so each carries its error; the reader sorts.
  await sink.put(servers);
  return streamSink ? await streamSink.close() : (sink as ArraySink).out;
}

/**
 * Pass another member's recursive listing on, streamed or (an older server) whole. The
 * time limit counts only waiting for the member: a long listing that a slow caller reads
 * slowly is not cut short.
 */
async function listPeer(mux: Mux, id: string, caller: string, sink: Sink): Promise<void> {
  const body: LsRequest = { path: [`X${id}`], recursive: true, caller };
  const stop = new AbortController();
  let timer: number | undefined;
  let over = false;
  const arm = () => {
    clearTimeout(timer);
    if (over) return;
    const t = setTimeout(() => {
      stop.abort(
        new CircuitError("timeout", `/X${id} sent nothing for ${LS_FANOUT_TIMEOUT_MS} ms`),
      );
    }, LS_FANOUT_TIMEOUT_MS) as unknown as number;
    Deno.unrefTimer(t);
    timer = t;
  };
  arm();
  const call = mux.call(Op.LS, body, { download: true, signal: stop.signal, label: `Ls /X${id}` });
  const relay = (async () => {
    const batches = readLsBatches(call.download!);
    for (;;) {
      arm();
      const next = await batches.next();
      clearTimeout(timer);
      if (next.done) break;
      await sink.put(decodeLsBatch(next.value));
    }
    arm(); // the reply follows the end of the stream
  })();
  try {
    let reply: unknown;
    try {
      reply = await call.result;
    } catch (err) {
      relay.catch(() => {});
      throw err;
    }
    if (Array.isArray(reply)) {
      // A server from before streamed listings: its download was reset, the reply is all.
      relay.catch(() => {});
      clearTimeout(timer);
      over = true;
      await feed(reply.map(checkLsEntry), sink);
      return;
    }
    await relay;
  } finally {
    over = true;
    clearTimeout(timer);
  }
}
