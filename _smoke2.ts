import { accept, dial } from "./net/conn.ts";
for (const keyed of [false, true]) {
const key = keyed ? crypto.getRandomValues(new Uint8Array(64)) : undefined;
const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const port = (l.addr as Deno.NetAddr).port;
const self = { pid: Deno.pid, id: "0123456789abcdef", url: "x" };
(async () => { for await (const c of l) accept(c, { key, self, handlerFor: () => async (call) => {
  const w = call.download!.getWriter(); const b = new Uint8Array(65536); for (let i = 0; i < 3000; i++) await w.write(b); await w.close(); return "ok"; }}); })();
const c = await dial({ host: "127.0.0.1", port, pid: Deno.pid, id: "0123456789abcdef" }, { key, role: "client" });
const s = c.mux.call("stream", null, { download: true }); let n = 0; const t = performance.now();
for await (const ch of s.download!) n += ch.length; console.log(keyed, "down", n, (n / 1e6) / ((performance.now() - t) / 1000), "MB/s", c.mux.stats.framesIn);
c.close(); l.close();
}
