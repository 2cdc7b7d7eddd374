/**
 * Section 5 of the benchmark: requests/s, frames/s and MB/s through one connection, in
 * process and across processes, beside raw Deno TCP.
 *
 * @module
 */

import { generateKey, parseKey, readKeyFile } from "../../mod.ts";
import { denoArgv, ROOT, spawnService } from "../_cluster.ts";
import type { Section, SectionContext } from "../_context.ts";
import { type Endpoint, listenEndpoint } from "../_endpoint.ts";
import {
  dialEndpoint,
  download,
  type EndpointAddr,
  pipelined,
  rawDownload,
} from "../_throughput.ts";

const TITLE = "5. Throughput through one connection";

const MiB = 1024 * 1024;

function params(quick: boolean) {
  return quick
    ? { batches: 8, batchSize: 1000, streamBytes: 128 * MiB, crossBytes: 128 * MiB }
    : { batches: 32, batchSize: 1000, streamBytes: 1024 * MiB, crossBytes: 512 * MiB };
}

async function withEndpoint<T>(
  key: Uint8Array | undefined,
  config: { coalesceBytes: number } | undefined,
  fn: (addr: EndpointAddr, ep: Endpoint) => Promise<T>,
): Promise<T> {
  const ep = listenEndpoint(key, config);
  try {
    return await fn({ host: "127.0.0.1", port: ep.port, pid: ep.pid, id: ep.id }, ep);
  } finally {
    await ep.close();
  }
}

type Params = ReturnType<typeof params>;

/** One way of configuring both ends of the connection. */
interface Variant {
  name: string;
  key: Uint8Array | undefined;
  config: { coalesceBytes: number } | undefined;
}

/** (a) Pipelined 100 B requests in process: requests/s, frames/s, messages per frame. */
async function requests(ctx: SectionContext, P: Params, v: Variant): Promise<void> {
  const batches = P.batches, size = P.batchSize;
  const r = await withEndpoint(v.key, v.config, async (addr) => {
    const conn = await dialEndpoint(addr, v.key, v.config);
    try {
      await pipelined(conn, 2, size, 100); // warm-up
      return await pipelined(conn, batches, size, 100);
    } finally {
      conn.close();
    }
  });
  const how = `in-process dial+accept; ${batches} batches of ${size} concurrent ` +
    `mux.request("echo", 100 B)`;
  ctx.add({
    section: TITLE,
    name: `(a) 100 B requests, ${v.name}: requests/s`,
    value: r.requestsPerS,
    unit: "req/s",
    notes: how,
  });
  ctx.add({
    section: TITLE,
    name: `(a) 100 B requests, ${v.name}: frames/s`,
    value: r.framesPerS,
    unit: "frames/s",
    notes: `both directions, client mux.stats: ${r.framesOut} out + ${r.framesIn} in`,
  });
  ctx.add({
    section: TITLE,
    name: `(a) 100 B requests, ${v.name}: messages/frame`,
    value: r.requestsPerFrame,
    unit: "msg/frame",
    notes: `requests per frame written; replies per frame read: ${r.repliesPerFrame.toFixed(1)}`,
  });
}

/** (b) A 64 KiB download stream in process. */
async function inProcessDownload(ctx: SectionContext, P: Params, v: Variant): Promise<void> {
  const r = await withEndpoint(v.key, undefined, async (addr) => {
    const conn = await dialEndpoint(addr, v.key);
    try {
      await download(conn, 16 * MiB); // warm-up
      return await download(conn, P.streamBytes);
    } finally {
      conn.close();
    }
  });
  ctx.add({
    section: TITLE,
    name: `(b) 64 KiB download stream, ${v.name}, in-process`,
    value: r.mbPerS,
    unit: "MB/s",
    notes: `${r.bytes / MiB} MiB in ${r.seconds.toFixed(2)} s, ${r.framesIn} frames; MB = 10^6 B`,
  });
}

/** (b) The floor: raw Deno TCP in process. */
async function inProcessRawFloor(ctx: SectionContext, P: Params): Promise<void> {
  const raw = await withEndpoint(
    undefined,
    undefined,
    (_addr, ep) => rawDownload("127.0.0.1", ep.rawSourcePort, P.streamBytes),
  );
  ctx.add({
    section: TITLE,
    name: "(b) floor: raw Deno TCP, 64 KiB writes, in-process",
    value: raw.mbPerS,
    unit: "MB/s",
    notes: `${raw.bytes / MiB} MiB; no framing, crypto or msgpack`,
  });
}

/**
 * (b) Across processes: the endpoint in a subprocess, the client here; unkeyed, also
 * the raw TCP floor.
 */
async function crossProcessDownload(
  ctx: SectionContext,
  P: Params,
  v: { name: string; key: Uint8Array | undefined; args: string[] },
): Promise<void> {
  const svc = await spawnService(denoArgv(`${ROOT}bench/_echo_server.ts`, v.args));
  try {
    const info = JSON.parse(svc.line) as {
      port: number;
      pid: number;
      id: string;
      rawSourcePort: number;
    };
    const conn = await dialEndpoint({
      host: "127.0.0.1",
      port: info.port,
      pid: info.pid,
      id: info.id,
    }, v.key);
    try {
      await download(conn, 16 * MiB);
      const r = await download(conn, P.crossBytes);
      ctx.add({
        section: TITLE,
        name: `(b) 64 KiB download stream, ${v.name}, across processes`,
        value: r.mbPerS,
        unit: "MB/s",
        notes: `${r.bytes / MiB} MiB in ${
          r.seconds.toFixed(2)
        } s; endpoint subprocess, client in the bench, unpinned`,
      });
    } finally {
      conn.close();
    }
    if (!v.key) {
      const rr = await rawDownload("127.0.0.1", info.rawSourcePort, P.crossBytes);
      ctx.add({
        section: TITLE,
        name: "(b) floor: raw Deno TCP, 64 KiB writes, across processes",
        value: rr.mbPerS,
        unit: "MB/s",
        notes: `${rr.bytes / MiB} MiB`,
      });
    }
  } finally {
    await svc.stop();
  }
}

/**
 * Section 5: pipelined requests, then download streams in process and across processes.
 *
 * @param ctx the run's context
 */
async function throughput(ctx: SectionContext): Promise<void> {
  const P = params(ctx.quick);
  const key = parseKey(generateKey());
  const variants: Variant[] = [
    { name: "keyed", key, config: undefined },
    { name: "unkeyed", key: undefined, config: undefined },
    { name: "keyed, coalescing off (coalesceBytes 1)", key, config: { coalesceBytes: 1 } },
  ];
  for (const v of variants) await requests(ctx, P, v);
  for (const v of variants.slice(0, 2)) await inProcessDownload(ctx, P, v);
  await inProcessRawFloor(ctx, P);
  const fileKey = await readKeyFile(ctx.keyFile);
  await crossProcessDownload(ctx, P, { name: "keyed", key: fileKey, args: [ctx.keyFile] });
  await crossProcessDownload(ctx, P, { name: "unkeyed", key: undefined, args: [] });
}

/** Section 5. */
export const throughputSection: Section = { n: 5, title: TITLE, run: throughput };
