/**
 * Throughput through one connection: pipelined small requests (requests/s, frames/s,
 * messages per frame) and one large download stream (MB/s), plus the raw TCP floor.
 *
 * @module
 */

import { type Connection, dial } from "../net/conn.ts";
import type { TransportConfig } from "../net/config.ts";
import type { MuxStats } from "../net/mux.ts";

/** Where an endpoint listens. */
export interface EndpointAddr {
  /** Host. */
  host: string;
  /** Transport port. */
  port: number;
  /** Its process id. */
  pid: number;
  /** Its id. */
  id: string;
}

/**
 * Dial an endpoint as a client.
 *
 * @param ep where
 * @param key the key, or none
 * @param config transport overrides
 * @returns the connection
 */
export function dialEndpoint(
  ep: EndpointAddr,
  key?: Uint8Array,
  config?: Partial<TransportConfig>,
): Promise<Connection> {
  return dial({ host: ep.host, port: ep.port, pid: ep.pid, id: ep.id }, {
    key,
    role: "client",
    config,
  });
}

/** Result of {@linkcode pipelined}. */
export interface PipelineResult {
  /** Requests completed. */
  requests: number;
  /** Wall time, in seconds. */
  seconds: number;
  /** Requests per second. */
  requestsPerS: number;
  /** Frames in both directions per second, as the client counted them. */
  framesPerS: number;
  /** Client frames written. */
  framesOut: number;
  /** Client frames read. */
  framesIn: number;
  /** Requests per client frame (coalescing of the requests). */
  requestsPerFrame: number;
  /** Replies per frame the client read (coalescing of the replies). */
  repliesPerFrame: number;
}

function delta(a: MuxStats, b: MuxStats): { framesOut: number; framesIn: number } {
  return { framesOut: b.framesOut - a.framesOut, framesIn: b.framesIn - a.framesIn };
}

/**
 * Send `batches` rounds of `batchSize` concurrent `echo` requests of `payloadBytes` each.
 *
 * @param conn the client connection
 * @param batches rounds
 * @param batchSize concurrent requests per round
 * @param payloadBytes bytes in each request body (a byte string)
 * @returns rates and coalescing ratios
 */
export async function pipelined(
  conn: Connection,
  batches: number,
  batchSize: number,
  payloadBytes: number,
): Promise<PipelineResult> {
  const payload = new Uint8Array(payloadBytes).fill(0x61);
  const before = conn.mux.stats;
  const t = performance.now();
  for (let b = 0; b < batches; b++) {
    const calls = new Array<Promise<unknown>>(batchSize);
    for (let i = 0; i < batchSize; i++) calls[i] = conn.mux.request("echo", payload);
    await Promise.all(calls);
  }
  const seconds = (performance.now() - t) / 1000;
  const d = delta(before, conn.mux.stats);
  const requests = batches * batchSize;
  return {
    requests,
    seconds,
    requestsPerS: requests / seconds,
    framesPerS: (d.framesOut + d.framesIn) / seconds,
    framesOut: d.framesOut,
    framesIn: d.framesIn,
    requestsPerFrame: requests / d.framesOut,
    repliesPerFrame: requests / d.framesIn,
  };
}

/** Result of a download. */
export interface StreamResult {
  /** Bytes received. */
  bytes: number;
  /** Wall time, in seconds. */
  seconds: number;
  /** Throughput, 10^6 bytes per second. */
  mbPerS: number;
  /** Frames the client read (transport downloads only). */
  framesIn?: number;
}

/**
 * Download `bytes` through one call's download stream.
 *
 * @param conn the client connection
 * @param bytes how many bytes the endpoint sends
 * @returns bytes, time and MB/s
 * @throws {Error} when fewer bytes arrive
 */
export async function download(conn: Connection, bytes: number): Promise<StreamResult> {
  const before = conn.mux.stats;
  const t = performance.now();
  const call = conn.mux.call("download", { bytes }, { download: true });
  let got = 0;
  for await (const chunk of call.download!) got += chunk.length;
  await call.result;
  const seconds = (performance.now() - t) / 1000;
  if (got !== bytes) throw new Error(`download got ${got} of ${bytes} bytes`);
  return {
    bytes,
    seconds,
    mbPerS: bytes / 1e6 / seconds,
    framesIn: delta(before, conn.mux.stats).framesIn,
  };
}

/**
 * Read `bytes` from the endpoint's raw TCP source: the runtime's socket floor.
 *
 * @param host where
 * @param port the raw source port
 * @param bytes how many
 * @returns bytes, time and MB/s
 */
export async function rawDownload(
  host: string,
  port: number,
  bytes: number,
): Promise<StreamResult> {
  const conn = await Deno.connect({ hostname: host, port });
  try {
    const head = new Uint8Array(8);
    new DataView(head.buffer).setBigUint64(0, BigInt(bytes));
    const t = performance.now();
    await conn.write(head);
    const buf = new Uint8Array(256 * 1024);
    let got = 0;
    while (got < bytes) {
      const n = await conn.read(buf);
      if (n === null) break;
      got += n;
    }
    const seconds = (performance.now() - t) / 1000;
    if (got !== bytes) throw new Error(`raw download got ${got} of ${bytes} bytes`);
    return { bytes, seconds, mbPerS: bytes / 1e6 / seconds };
  } finally {
    conn.close();
  }
}
