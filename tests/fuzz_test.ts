/**
 * Bounded fuzzing of the frame decoder and the handshake, through real sockets against a
 * real keyed server: random and mutated hellos, oversized and truncated frames, bytes
 * after a valid hello or proof, and (with the key, as a key holder would) sealed frames
 * with random bodies. Every case must end with the server closing that connection, and
 * the server must keep serving. One run uses a fixed seed, one a random seed; fast-check
 * prints the seed of a failure, so it can be replayed.
 */

import fc from "fast-check";
import { Packr } from "msgpackr/pack";
import { connect } from "../mod.ts";
import { FrameOpener, FrameSealer } from "../net/frame.ts";
import { parseKey } from "../net/keys.ts";
import { deriveKeys, NONCE_BYTES, proof } from "../net/handshake.ts";
import { loadNodeCrypto } from "../net/node_crypto.ts";
import { parseUrl } from "../net/url.ts";
import { assert, assertEquals, cli, keyFile, Server, TempDir } from "./_harness.ts";
import { concat, frame, writeAll } from "./_bytes.ts";

const packr = new Packr({ useRecords: false, moreTypes: false });

/** The seed of the reproducible run. */
const FIXED_SEED = 18;
/** Time limit of each of the two runs (fast-check stops adding cases after it), in ms. */
const RUN_BUDGET_MS = 7000;
/** Most cases per run. */
const RUNS = 1000;
/** How long the server may take to close a connection fed one case, in ms. */
const CLOSE_WITHIN_MS = 4000;

/**
 * Whether `bytes` (what a peer without the key got) are only plain handshake frames: a
 * challenge or a refusal. A sealed welcome, or anything else, would mean it got past.
 */
function onlyHandshakeReplies(bytes: Uint8Array): boolean {
  let off = 0;
  while (off < bytes.length) {
    if (bytes.length - off < 4) return false;
    const n = new DataView(bytes.buffer, bytes.byteOffset + off).getUint32(0);
    if (bytes.length - off - 4 < n) return false;
    let m: { nonce?: unknown; error?: unknown } | null;
    try {
      m = packr.unpack(bytes.subarray(off + 4, off + 4 + n));
    } catch {
      return false;
    }
    if (!m || typeof m !== "object" || !(m.nonce instanceof Uint8Array || m.error)) return false;
    off += 4 + n;
  }
  return true;
}

/**
 * Reads until EOF or reset, keeping what arrived; `closed` false when the server still
 * holds the connection open after `ms`.
 */
async function closedWithin(
  c: Deno.Conn,
  ms: number,
  got: number[],
): Promise<boolean> {
  const buf = new Uint8Array(8192);
  const deadline = Date.now() + ms;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), ms)));
  try {
    while (Date.now() < deadline) {
      const n = await Promise.race([c.read(buf).catch(() => null), late]);
      if (n === "late") return false;
      if (n === null) return true;
      if (got.length < 65536) got.push(...buf.subarray(0, n));
    }
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** One fuzz case: what to send, and whether to complete a real handshake first. */
type Case =
  | { kind: "raw"; bytes: Uint8Array }
  | { kind: "hello"; hello: unknown; after: Uint8Array }
  | { kind: "mutated hello"; at: number; xor: number; cut: number; after: Uint8Array }
  | { kind: "length"; length: number; bytes: Uint8Array }
  | { kind: "proof"; proof: Uint8Array; after: Uint8Array }
  | { kind: "sealed"; bodies: Uint8Array[]; tail: Uint8Array };

function cases(target: { pid: number; id: string }): fc.Arbitrary<Case> {
  const anything = fc.anything({ maxDepth: 2, maxKeys: 4, withTypedArray: true });
  const bytes = (max: number) => fc.uint8Array({ maxLength: max });
  const goodHello = fc.record({
    v: fc.oneof(fc.constant([2, 2]), anything),
    role: fc.oneof(fc.constantFrom("client", "peer"), fc.string({ maxLength: 20 }), anything),
    nonce: fc.oneof(fc.uint8Array({ minLength: NONCE_BYTES, maxLength: NONCE_BYTES }), anything),
    to: fc.oneof(
      fc.constant(target),
      fc.record({ pid: anything, id: fc.oneof(fc.string({ maxLength: 40 }), anything) }),
    ),
    keyed: fc.oneof(fc.constant(true), anything),
    from: fc.oneof(
      fc.constant(undefined),
      fc.record({ id: fc.string({ maxLength: 40 }), url: fc.string(), joined: fc.string() }),
      anything,
    ),
  });
  return fc.oneof(
    fc.record({
      kind: fc.constant("raw" as const),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 600 }),
    }),
    fc.record({ kind: fc.constant("hello" as const), hello: goodHello, after: bytes(64) }),
    fc.record({
      kind: fc.constant("mutated hello" as const),
      at: fc.nat(200),
      xor: fc.integer({ min: 1, max: 255 }),
      cut: fc.nat(220),
      after: bytes(64),
    }),
    fc.record({
      kind: fc.constant("length" as const),
      length: fc.oneof(fc.integer({ min: 4097, max: 0xffffffff }), fc.nat(4096)),
      bytes: bytes(300),
    }),
    fc.record({ kind: fc.constant("proof" as const), proof: bytes(64), after: bytes(64) }),
    fc.record({
      kind: fc.constant("sealed" as const),
      bodies: fc.array(
        fc.oneof(
          bytes(200),
          anything.map((v) => {
            try {
              return packr.pack(v);
            } catch {
              return new Uint8Array(0);
            }
          }),
        ),
        { minLength: 1, maxLength: 4 },
      ),
      tail: bytes(40),
    }),
  );
}

/** A valid hello to `target`, and its nonce. */
function validHello(target: { pid: number; id: string }) {
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const body = packr.pack({ v: [2, 2], role: "client", nonce, to: target, keyed: true });
  return { nonce, bytes: frame(body) };
}

/** Reads one plain frame (the challenge); null when the server closed instead. */
async function readPlainFrame(c: Deno.Conn): Promise<Uint8Array | null> {
  const o = new FrameOpener(undefined, 4096);
  const buf = new Uint8Array(4100);
  for (;;) {
    const n = await c.read(buf).catch(() => null);
    if (n === null) return null;
    const f = o.push(buf.subarray(0, n));
    if (f.length) return f[0];
  }
}

/** Plays one case on a fresh connection; true when the server then closed it. */
async function play(
  addr: { hostname: string; port: number },
  target: { pid: number; id: string },
  key: Uint8Array,
  c: Case,
): Promise<boolean> {
  const conn = await Deno.connect(addr);
  const codecs: { close(): void }[] = [];
  try {
    switch (c.kind) {
      case "raw":
        await writeAll(conn, c.bytes);
        break;
      case "hello":
        await writeAll(conn, concat(frame(packr.pack(c.hello)), c.after));
        break;
      case "mutated hello": {
        const h = validHello(target).bytes;
        const m = h.slice(0, Math.max(1, h.length - (c.cut % h.length)));
        m[c.at % m.length] ^= c.xor;
        await writeAll(conn, concat(m, c.after));
        break;
      }
      case "length": {
        const head = new Uint8Array(4);
        new DataView(head.buffer).setUint32(0, c.length);
        await writeAll(conn, concat(head, c.bytes));
        break;
      }
      case "proof":
      case "sealed": {
        const h = validHello(target);
        await writeAll(conn, h.bytes);
        const ch = await readPlainFrame(conn);
        assert(ch, "a valid hello got no challenge");
        const { nonce: ns } = packr.unpack(ch) as { nonce: Uint8Array };
        if (c.kind === "proof") {
          await writeAll(conn, concat(frame(packr.pack({ proof: c.proof })), c.after));
          break;
        }
        // A key holder: a real proof, then sealed frames with random bodies.
        const good = proof(key, "client", h.nonce, ns, target);
        await writeAll(conn, frame(packr.pack({ proof: good })));
        const keys = deriveKeys(key, h.nonce, ns, target);
        const sealer = new FrameSealer(keys.dialerToTarget);
        codecs.push(sealer);
        await writeAll(conn, concat(...c.bodies.map((b) => sealer.seal(b).slice()), c.tail));
        break;
      }
    }
    await conn.closeWrite().catch(() => {});
    const got: number[] = [];
    const closed = await closedWithin(conn, CLOSE_WITHIN_MS, got);
    if (c.kind !== "sealed" && !onlyHandshakeReplies(Uint8Array.from(got))) {
      throw new Error(`a ${c.kind} case got more than a challenge or a refusal: ${got}`);
    }
    return closed;
  } catch (err) {
    if (err instanceof Error && /got no challenge|got more than/.test(err.message)) throw err;
    return true; // reset by the server: closed
  } finally {
    for (const x of codecs) x.close();
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

Deno.test("fuzzed hellos, proofs and frames never crash a keyed server nor get past it", async () => {
  await loadNodeCrypto();
  using tmp = new TempDir();
  const keyPath = await keyFile(tmp.path);
  const keyText = await Deno.readTextFile(keyPath);
  const key = parseKey(keyText);
  await using server = await Server.start({ args: ["--hmac", keyPath, "-a", "127.0.0.1:0"] });
  const u = parseUrl(server.url);
  const addr = { hostname: u.host, port: u.port };
  const target = { pid: u.pid, id: u.id };
  const randomSeed = Math.floor(Math.random() * 2 ** 31);
  const played = new Map<string, number>();
  for (const seed of [FIXED_SEED, randomSeed]) {
    await fc.assert(
      fc.asyncProperty(cases(target), async (c) => {
        played.set(c.kind, (played.get(c.kind) ?? 0) + 1);
        assert(await play(addr, target, key, c), `the server kept a ${c.kind} case open`);
      }),
      {
        seed,
        numRuns: RUNS,
        interruptAfterTimeLimit: RUN_BUDGET_MS,
        markInterruptAsFailure: false,
      },
    ).catch((err) => {
      throw new Error(`fuzz run with seed ${seed} failed: ${(err as Error).message}`);
    });
  }
  console.log(`fuzz cases played: ${JSON.stringify(Object.fromEntries(played))}`);
  assertEquals(played.size, 6, "every kind of case was played");
  // Still serving, and still itself.
  await using client = await connect(server.url, { key: keyText });
  assertEquals((await client.walk("/").ls()).length, 1, "a real client's ls");
  const stk = await cli(["stk", "-d", server.url, "--hmac", keyPath, server.path]);
  assertEquals(stk.code, 0, stk.stderr);
  assert(JSON.parse(stk.stdout).Pid === server.child.pid, stk.stdout);
});
