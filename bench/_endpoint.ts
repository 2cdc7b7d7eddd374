/**
 * A bare transport endpoint for throughput runs: `net/conn.ts` accept with a handler
 * that echoes (`echo`) and streams zeros (`download`), plus a raw TCP echo and a raw TCP
 * source for the runtime's floor. Used in-process by `run.ts` and as a subprocess by
 * `_echo_server.ts`.
 *
 * @module
 */

import { accept, type Connection } from "../net/conn.ts";
import type { TransportConfig } from "../net/config.ts";
import type { Handler } from "../net/mux.ts";

/** The id the endpoint answers to (any 16 hex digits). */
export const ENDPOINT_ID = "00000000b3c4b3c4";

/** Largest chunk the `download` op writes, in bytes. */
export const CHUNK_BYTES = 64 * 1024;

/**
 * Serves `echo` (returns the body) and `download` (`{bytes}` zeros in 64 KiB writes).
 */
export const benchHandler: Handler = async (call) => {
  if (call.op === "echo") return call.body;
  if (call.op === "download" && call.download) {
    const total = Number((call.body as { bytes?: number })?.bytes ?? 0);
    const chunk = new Uint8Array(CHUNK_BYTES);
    const w = call.download.getWriter();
    let left = total;
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      await w.write(n === chunk.length ? chunk : chunk.subarray(0, n));
      left -= n;
    }
    await w.close();
    return total;
  }
  throw new Error(`unknown op ${call.op}`);
};

/** A listening endpoint. */
export interface Endpoint {
  /** Port of the circuit transport. */
  port: number;
  /** Port of the raw TCP echo (bytes back as they come). */
  rawEchoPort: number;
  /** Port of the raw TCP source (first 8 bytes: big-endian count; then that many zeros). */
  rawSourcePort: number;
  /** Process id the hello must name. */
  pid: number;
  /** Id the hello must name. */
  id: string;
  /** Established transport connections. */
  conns: Connection[];
  /** Stop listening and close every connection. */
  close(): Promise<void>;
}

async function rawEcho(c: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await c.read(buf);
      if (n === null) break;
      let off = 0;
      while (off < n) off += await c.write(buf.subarray(off, n));
    }
  } catch { /* peer gone */ }
  try {
    c.close();
  } catch { /* closed */ }
}

async function rawSource(c: Deno.Conn): Promise<void> {
  try {
    const head = new Uint8Array(8);
    let got = 0;
    while (got < 8) {
      const n = await c.read(head.subarray(got));
      if (n === null) throw new Error("eof");
      got += n;
    }
    let left = Number(new DataView(head.buffer).getBigUint64(0));
    const chunk = new Uint8Array(CHUNK_BYTES);
    while (left > 0) {
      const n = await c.write(chunk.subarray(0, Math.min(left, chunk.length)));
      left -= n;
    }
  } catch { /* peer gone */ }
  try {
    c.close();
  } catch { /* closed */ }
}

function serveEach(l: Deno.Listener, fn: (c: Deno.Conn) => Promise<void>): Promise<void> {
  return (async () => {
    try {
      for await (const c of l) {
        (c as Deno.TcpConn).setNoDelay?.(true);
        void fn(c);
      }
    } catch { /* listener closed */ }
  })();
}

/**
 * Listen on 127.0.0.1 (any ports) and serve until closed.
 *
 * @param key the cluster key, or none for plain frames
 * @param config transport overrides (e.g. `coalesceBytes`)
 * @returns the endpoint
 */
export function listenEndpoint(key?: Uint8Array, config?: Partial<TransportConfig>): Endpoint {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const rawL = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const srcL = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  const conns: Connection[] = [];
  const url = `circuit://127.0.0.1:${port}/${Deno.pid}/Q${ENDPOINT_ID}`;
  const pending: Promise<unknown>[] = [];
  const loops = [
    serveEach(l, (sock) => {
      const p = accept(sock, {
        key,
        self: { pid: Deno.pid, id: ENDPOINT_ID, url },
        handlerFor: () => benchHandler,
        config,
      }).then((c) => {
        if (c) conns.push(c);
      });
      pending.push(p);
      return p;
    }),
    serveEach(rawL, rawEcho),
    serveEach(srcL, rawSource),
  ];
  return {
    port,
    rawEchoPort: (rawL.addr as Deno.NetAddr).port,
    rawSourcePort: (srcL.addr as Deno.NetAddr).port,
    pid: Deno.pid,
    id: ENDPOINT_ID,
    conns,
    async close() {
      for (const x of [l, rawL, srcL]) {
        try {
          x.close();
        } catch { /* closed */ }
      }
      await Promise.all(loops);
      await Promise.allSettled(pending);
      for (const c of conns) c.close();
      await Promise.all(conns.map((c) => c.closed));
    },
  };
}
