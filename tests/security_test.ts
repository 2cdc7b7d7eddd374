/**
 * Keys, handshake and frame integrity against a real keyed server. A proxy between the
 * library client and the server tampers with, replays or truncates frames after the
 * handshake; the server must drop that connection and keep serving.
 */

import fc from "fast-check";
import { Packr } from "msgpackr/pack";
import { CircuitError, connect } from "../mod.ts";
import { Tag } from "../net/mux.ts";
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
import { concat, frame, writeAll } from "./_bytes.ts";

/** What the proxy does to client → server bytes once `afterBytes` have passed. */
type Mischief = "flip" | "replay" | "truncate";

/**
 * A TCP proxy on loopback in front of `target`: each accepted client gets a connection to
 * the target, and `pipe(from, to, upstream)` carries each direction (closing both ends
 * when it ends). Subclasses decide what happens to the bytes on the way.
 */
abstract class TcpProxy implements AsyncDisposable {
  readonly listener: Deno.Listener;
  #tasks: Promise<unknown>[] = [];
  #socks: Deno.Conn[] = [];

  constructor(target: { hostname: string; port: number }) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.listener = listener;
    this.#tasks.push(
      (async () => {
        for await (const client of listener) {
          const server = await Deno.connect(target);
          this.#socks.push(client, server);
          this.#tasks.push(this.#carry(client, server, true));
          this.#tasks.push(this.#carry(server, client, false));
        }
      })().catch(() => {}),
    );
  }

  get port(): number {
    return (this.listener.addr as Deno.NetAddr).port;
  }

  /** Carry one direction; `upstream` is client → server. Throws when a socket closes. */
  protected abstract pipe(from: Deno.Conn, to: Deno.Conn, upstream: boolean): Promise<void>;

  async #carry(from: Deno.Conn, to: Deno.Conn, upstream: boolean): Promise<void> {
    try {
      await this.pipe(from, to, upstream);
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

/** A one-connection TCP proxy that misbehaves after the handshake. */
class Proxy extends TcpProxy {
  #mischief: Mischief;
  #after: number;

  constructor(target: { hostname: string; port: number }, mischief: Mischief, afterBytes: number) {
    super(target);
    this.#mischief = mischief;
    this.#after = afterBytes;
  }

  protected async pipe(from: Deno.Conn, to: Deno.Conn, upstream: boolean): Promise<void> {
    const mischief = upstream ? this.#mischief : null;
    const after = this.#after;
    const buf = new Uint8Array(65536);
    let seen = 0;
    let done = false;
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
  }
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

// ---- no byte crosses a key change (issue 18, item 1) ----

const wirePackr = new Packr({ useRecords: false, moreTypes: false });

/** A plain frame: `length (u32) | body`, as every handshake frame travels. */
function plainFrame(body: unknown): Uint8Array {
  return frame(wirePackr.pack(body));
}

/**
 * The mux REQ frame an attacker who read docs/wire.md would write: `make proc` running
 * `/usr/bin/touch FILE` at `/X…/NAME` (the call id odd from a dialer, even from the target).
 */
function makeProcFrame(serverPath: string, name: string, file: string, id: number): Uint8Array {
  const body = {
    path: [serverPath.slice(1), name],
    kind: "proc",
    spec: { cmd: { Path: "/usr/bin/touch", Args: [file] } },
  };
  return plainFrame([Tag.REQ, id, "make", body, 0]);
}

/**
 * What the proxy writes in place of the `index`-th plain handshake frame of one direction:
 * each element one TCP write, in order (a pause between them).
 */
type Rewrite = (frame: Uint8Array, index: number) => Uint8Array[];

/**
 * An on-path TCP proxy that parses the plain handshake frames of each direction (the
 * first `frames` of them) and lets a {@linkcode Rewrite} replace each, then passes the
 * rest through untouched.
 */
class InjectingProxy extends TcpProxy {
  #rewrites: { up?: Rewrite; down?: Rewrite };

  constructor(
    target: { hostname: string; port: number },
    rewrites: { up?: Rewrite; down?: Rewrite },
  ) {
    super(target);
    this.#rewrites = rewrites;
  }

  protected async pipe(from: Deno.Conn, to: Deno.Conn, upstream: boolean): Promise<void> {
    const rewrite = upstream ? this.#rewrites.up : this.#rewrites.down;
    const buf = new Uint8Array(65536);
    let held: Uint8Array = new Uint8Array(0);
    let index = 0;
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      if (!rewrite || index >= 2) {
        await writeAll(to, buf.slice(0, n));
        continue;
      }
      held = concat(held, buf.subarray(0, n));
      // Two plain frames each way precede the key change (hello, proof; challenge, and
      // the welcome, which is keyed: only the first is rewritten downstream).
      while (index < 2 && held.length >= 4) {
        const len = new DataView(held.buffer, held.byteOffset).getUint32(0);
        if (held.length < 4 + len) break;
        const frame = held.slice(0, 4 + len);
        held = held.slice(4 + len);
        const writes = rewrite(frame, index++);
        for (let i = 0; i < writes.length; i++) {
          if (i > 0) await new Promise((r) => setTimeout(r, 150));
          await writeAll(to, writes[i]);
        }
      }
      if (index >= 2 && held.length) {
        await writeAll(to, held);
        held = new Uint8Array(0);
      }
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** The names under `/X…` of a server, listed by a direct, keyed client. */
async function anchorsOf(url: string, path: string, keyText: string): Promise<string[]> {
  await using c = await connect(url, { key: keyText });
  return (await c.walk(path).ls()).map((e) => e.path);
}

/** Wait long enough for an injected `touch` to have run, had it been accepted. */
const INJECTION_SETTLE_MS = 1500;

/** How the proxy rewrites the client's handshake frames (0: hello, 1: proof). */
const CLIENT_SIDE_INJECTIONS: Record<string, (inj: Uint8Array) => Rewrite> = {
  "appended to the proof in the same write": (inj) => (f, i) => i === 1 ? [concat(f, inj)] : [f],
  "split across writes after the proof (inside the length)": (inj) => (f, i) =>
    i === 1 ? [concat(f, inj.subarray(0, 2)), inj.subarray(2)] : [f],
  "split across writes after the proof (inside the body)": (inj) => (f, i) =>
    i === 1 ? [concat(f, inj.subarray(0, 20)), inj.subarray(20)] : [f],
  "reordered before the proof": (inj) => (f, i) => i === 1 ? [concat(inj, f)] : [f],
  "appended to the hello": (inj) => (f, i) => i === 0 ? [concat(f, inj)] : [f],
  "written on its own after the proof": (inj) => (f, i) => i === 1 ? [f, inj] : [f],
};

Deno.test("a plaintext request injected around the client's proof never runs (on-path proxy)", async () => {
  using tmp = new TempDir();
  const { server, keyText } = await keyedServer(tmp);
  await using _ = server;
  const u = parseUrl(server.url);
  const variants = Object.entries(CLIENT_SIDE_INJECTIONS);
  for (const [v, [what, plan]] of variants.entries()) {
    const file = `${tmp.path}/pwned-${v}`;
    const inj = makeProcFrame(server.path, `pwned${v}`, file, 0x7ffffff1);
    await using proxy = new InjectingProxy({ hostname: u.host, port: u.port }, { up: plan(inj) });
    const err = await (async () => {
      await using c = await connect(viaProxy(server.url, proxy.port), { key: keyText });
      for (let i = 0; i < 3; i++) {
        await c.walk("/").ls({ timeoutMs: 3000 });
        await new Promise((r) => setTimeout(r, 100));
      }
    })().then(() => null, (e) => e);
    await new Promise((r) => setTimeout(r, INJECTION_SETTLE_MS));
    assert(!(await exists(file)), `${what}: the injected command ran (${file} exists)`);
    assert(err instanceof CircuitError, `${what}: the tampered connection must be dropped: ${err}`);
    const names = await anchorsOf(server.url, server.path, keyText);
    assertEquals(names, [], `${what}: no anchor made`);
  }
  await stillServes(server.url, keyText);
  server.kill("SIGTERM");
  const log = await server.stderr();
  assert(
    /unexpected bytes followed the client's proof/.test(log),
    `the appended bytes are logged:\n${log}`,
  );
  assert(!/make proc/.test(await Deno.readTextFile(`${server.varDir}/ops.log`).catch(() => "")));
});

/** How the proxy rewrites the server's challenge (frame 0 towards the dialer). */
const DIAL_SIDE_INJECTIONS: Record<string, (welcome: Uint8Array, req: Uint8Array) => Rewrite> = {
  "a fake welcome and a request appended to the challenge": (w, r) => (f, i) =>
    i === 0 ? [concat(f, w, r)] : [f],
  "the same, split inside the request": (w, r) => (f, i) =>
    i === 0 ? [concat(f, w, r.subarray(0, 9)), r.subarray(9)] : [f],
  "a fake welcome before the challenge": (w, r) => (f, i) => i === 0 ? [concat(w, f, r)] : [f],
};

Deno.test("a server joining through an on-path proxy takes no fake welcome or plaintext request", async () => {
  using tmp = new TempDir();
  const { key, server, keyText } = await keyedServer(tmp);
  await using _ = server;
  await using joiner = await Server.start({ args: ["--hmac", key, "-a", "127.0.0.1:0"] });
  const u = parseUrl(server.url);
  const variants = Object.entries(DIAL_SIDE_INJECTIONS);
  for (const [v, [what, plan]] of variants.entries()) {
    const file = `${tmp.path}/pwned-join-${v}`;
    const welcome = plainFrame({ id: u.id, url: server.url });
    const req = makeProcFrame(joiner.path, `pwned${v}`, file, 0x7ffffff0);
    await using proxy = new InjectingProxy(
      { hostname: u.host, port: u.port },
      { down: plan(welcome, req) },
    );
    const r = await cli([
      "join",
      "-d",
      joiner.url,
      "--hmac",
      key,
      joiner.path,
      viaProxy(server.url, proxy.port),
    ]);
    await new Promise((res) => setTimeout(res, INJECTION_SETTLE_MS));
    assert(
      !(await exists(file)),
      `${what}: the injected command ran on the joiner (${file} exists)`,
    );
    assertOneLineError(r, /Dialing .* failed|malformed/);
    assertEquals(await anchorsOf(joiner.url, joiner.path, keyText), [], `${what}: no anchor made`);
  }
  joiner.kill("SIGTERM");
  const log = await joiner.stderr();
  assert(!/caller "peer mesh"|make proc/.test(log), log);
});

// ---- key stream epochs (issue 18, item 6) ----

Deno.test("a keyed stream crosses dozens of key stream epochs intact (tiny epoch, real server)", async () => {
  using tmp = new TempDir();
  const key = await keyFile(tmp.path);
  // Both ends must use the same epoch size: the server and each CLI get it.
  const env = { CIRCUIT_TEST_EPOCH_BYTES: "10000" };
  await using server = await Server.start({ args: ["--hmac", key, "-a", "127.0.0.1:0"], env });
  const p = `${server.path}/seq`;
  const N = 120_000; // 728,895 bytes of stdout: about 73 epochs, in multi-part frames
  const mk = await cli(["mkproc", "-d", server.url, "--hmac", key, p], {
    stdin: JSON.stringify({ Path: "/usr/bin/seq", Args: ["1", String(N)] }),
    env,
  });
  assertEquals([mk.code, mk.stderr], [0, ""], "mkproc");
  const r = await cli(["stdout", "-d", server.url, "--hmac", key, p], { env });
  const want = Array.from({ length: N }, (_, i) => i + 1).join("\n") + "\n";
  assertEquals([r.code, r.stderr, r.stdout.length], [0, "", want.length], "stdout");
  assert(r.stdout === want, "stdout bytes differ from seq's output");
  // The setting really reaches both processes: a client on the default epoch cannot read
  // past the server's first epoch change.
  const p2 = `${server.path}/seq2`;
  const mk2 = await cli(["mkproc", "-d", server.url, "--hmac", key, p2], {
    stdin: JSON.stringify({ Path: "/usr/bin/seq", Args: ["1", String(N)] }),
    env,
  });
  assertEquals(mk2.code, 0, mk2.stderr);
  const bad = await cli(["stdout", "-d", server.url, "--hmac", key, p2]);
  assert(bad.code !== 0 || bad.stdout !== want, "a client on another epoch size read it all");
});
