/**
 * Keys, handshake and frame integrity against a real keyed server. A proxy between the
 * library client and the server tampers with, replays or truncates frames after the
 * handshake; the server must drop that connection and keep serving.
 */

import fc from "fast-check";
import { CircuitError, connect } from "../mod.ts";
import { parseUrl } from "../net/url.ts";
import {
  assert,
  assertEquals,
  assertOneLineError,
  cli,
  keyFile,
  Server,
  TempDir,
  waitFor,
} from "./_harness.ts";

/** What the proxy does to client → server bytes once `afterBytes` have passed. */
type Mischief = "flip" | "replay" | "truncate";

/** A one-connection TCP proxy that misbehaves after the handshake. */
class Proxy implements AsyncDisposable {
  readonly listener: Deno.Listener;
  #tasks: Promise<unknown>[] = [];
  #socks: Deno.Conn[] = [];

  constructor(target: { hostname: string; port: number }, mischief: Mischief, afterBytes: number) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.listener = listener;
    this.#tasks.push(
      (async () => {
        for await (const client of listener) {
          const server = await Deno.connect(target);
          this.#socks.push(client, server);
          this.#tasks.push(this.#pipe(server, client, null, 0));
          this.#tasks.push(this.#pipe(client, server, mischief, afterBytes));
        }
      })().catch(() => {}),
    );
  }

  get port(): number {
    return (this.listener.addr as Deno.NetAddr).port;
  }

  async #pipe(from: Deno.Conn, to: Deno.Conn, mischief: Mischief | null, after: number) {
    const buf = new Uint8Array(65536);
    let seen = 0;
    let done = false;
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        const chunk = buf.slice(0, n);
        if (mischief && !done && seen + n > after) {
          done = true;
          if (mischief === "flip") chunk[Math.max(0, after - seen) + 6] ^= 0x40;
          if (mischief === "replay") await writeAll(to, chunk);
          if (mischief === "truncate") {
            await writeAll(to, chunk.subarray(0, Math.max(1, after - seen + 3)));
            break;
          }
        }
        seen += n;
        await writeAll(to, chunk);
      }
    } catch { /* closed */ }
    for (const s of [from, to]) {
      try {
        s.close();
      } catch { /* closed */ }
    }
  }

  async [Symbol.asyncDispose]() {
    this.listener.close();
    for (const s of this.#socks) {
      try {
        s.close();
      } catch { /* closed */ }
    }
    await Promise.all(this.#tasks);
  }
}

async function writeAll(c: Deno.Conn, b: Uint8Array) {
  let off = 0;
  while (off < b.length) off += await c.write(b.subarray(off));
}

/** Bytes the client sends up to and including its handshake proof. */
const HANDSHAKE_CLIENT_BYTES = 220;

async function keyedServer(tmp: TempDir) {
  const key = await keyFile(tmp.path);
  const server = await Server.start({ args: ["--hmac", key, "-a", "127.0.0.1:0"] });
  return { key, server, keyText: await Deno.readTextFile(key) };
}

function viaProxy(url: string, port: number): string {
  const u = parseUrl(url);
  return `circuit://127.0.0.1:${port}/${u.pid}/Q${u.id}`;
}

async function stillServes(url: string, keyText: string) {
  await using c = await connect(url, { key: keyText });
  assertEquals((await c.walk("/").ls()).length, 1, "server still serves a good client");
}

Deno.test("a keyed server serves clients with the key from --hmac and $CIRCUIT_HMAC", async () => {
  using tmp = new TempDir();
  const { key, server } = await keyedServer(tmp);
  await using _ = server;
  const viaFlag = await cli(["ls", "-d", server.url, "--hmac", key, "/"]);
  assertEquals([viaFlag.code, viaFlag.stdout], [0, `${server.path}\n`], viaFlag.stderr);
  const viaEnv = await cli(["ls", "-d", server.url, "/"], { env: { CIRCUIT_HMAC: key } });
  assertEquals([viaEnv.code, viaEnv.stdout], [0, `${server.path}\n`], viaEnv.stderr);
});

Deno.test("a key mismatch, a missing key or an unexpected key is refused with exit 1", async () => {
  using tmp = new TempDir();
  const { server } = await keyedServer(tmp);
  await using _ = server;
  const other = await keyFile(tmp.path, "other");
  assertOneLineError(await cli(["ls", "-d", server.url, "--hmac", other, "/"]), /key mismatch/);
  assertOneLineError(await cli(["ls", "-d", server.url, "/"]), /requires a key/);
  await using open = await Server.start();
  assertOneLineError(
    await cli(["ls", "-d", open.url, "--hmac", other, "/"]),
    /without a key but the client has one/,
  );
  const err = await connect(server.url, { key: await Deno.readTextFile(other) }).catch((e) => e);
  assert(err instanceof CircuitError && err.code === "auth", String(err));
});

Deno.test("a server with the wrong key cannot join the cluster", async () => {
  using tmp = new TempDir();
  const { server } = await keyedServer(tmp);
  await using _ = server;
  const other = await keyFile(tmp.path, "other");
  let msg = "";
  try {
    await using joined = await Server.start({
      args: ["--hmac", other, "-a", "127.0.0.1:0", "-j", server.url],
    });
    msg = `joined: ${joined.url}`;
  } catch (e) {
    msg = (e as Error).message;
  }
  assert(/exited 1 [\s\S]*key mismatch/.test(msg), msg);
});

for (const mischief of ["flip", "replay", "truncate"] as const) {
  Deno.test(`a frame ${mischief === "flip" ? "with a flipped bit" : mischief === "replay" ? "replayed" : "truncated"} after the handshake closes only that connection`, async () => {
    using tmp = new TempDir();
    const { server, keyText } = await keyedServer(tmp);
    await using _ = server;
    const u = parseUrl(server.url);
    await using proxy = new Proxy(
      { hostname: u.host, port: u.port },
      mischief,
      HANDSHAKE_CLIENT_BYTES + 8,
    );
    const client = await connect(viaProxy(server.url, proxy.port), { key: keyText });
    try {
      const err = await (async () => {
        for (let i = 0; i < 20; i++) await client.walk("/").ls({ timeoutMs: 2000 });
      })().then(() => null, (e) => e);
      assert(err instanceof CircuitError, `calls through a ${mischief} proxy must fail: ${err}`);
    } finally {
      client.close();
    }
    await stillServes(server.url, keyText);
    server.kill("SIGTERM");
    const log = await server.stderr();
    const lines = log.split("\n").filter((l) => /MAC mismatch|ended inside a frame|closed/.test(l));
    if (mischief !== "truncate") assert(lines.length >= 1, `one log line expected:\n${log}`);
  });
}

Deno.test("garbage and oversized frames never crash the server (property test)", async () => {
  using tmp = new TempDir();
  const { server, keyText } = await keyedServer(tmp);
  await using _ = server;
  const u = parseUrl(server.url);
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 600 }), async (bytes) => {
      const c = await Deno.connect({ hostname: u.host, port: u.port });
      try {
        await writeAll(c, bytes);
        await c.closeWrite();
        await c.read(new Uint8Array(1024)).catch(() => null);
      } catch {
        /* reset by the server is fine */
      } finally {
        try {
          c.close();
        } catch { /* closed */ }
      }
    }),
    { numRuns: 40 },
  );
  const c = await Deno.connect({ hostname: u.host, port: u.port });
  await writeAll(c, new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
  const eof = await c.read(new Uint8Array(16)).catch(() => null);
  c.close();
  assertEquals(eof, null, "an oversized length prefix closes the connection");
  await stillServes(server.url, keyText);
  await waitFor(() => server.child.pid > 0, "server alive");
});
