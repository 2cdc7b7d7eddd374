import fc from "fast-check";
import { createDecipheriv, createHmac } from "node:crypto";
import {
  type DirectionKeys,
  FrameError,
  type FrameErrorReason,
  FrameOpener,
  FrameSealer,
  LENGTH_BYTES,
  MAC_BYTES,
} from "./frame.ts";
import { loadNodeCrypto } from "./node_crypto.ts";
import { assert, equal } from "../tests/_assert.ts";
import { concat } from "../tests/_bytes.ts";

await loadNodeCrypto();

// ---- byte assertions that show the whole bytes in hex ----

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function assertBytesEqual(got: Uint8Array, want: Uint8Array, msg = ""): void {
  if (!equal(got, want)) {
    throw new Error(`${msg} bytes differ:\n got  ${hex(got)}\n want ${hex(want)}`);
  }
}

function assertBodies(got: Uint8Array[], want: Uint8Array[]): void {
  assert(got.length === want.length, `expected ${want.length} bodies, got ${got.length}`);
  for (let i = 0; i < want.length; i++) assertBytesEqual(got[i], want[i], `body ${i}`);
}

/** Runs fn, which must throw a FrameError with one of the reasons; returns the error. */
function assertFrameError(fn: () => unknown, reasons: FrameErrorReason[]): FrameError {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof FrameError)) {
      throw new Error(`expected FrameError, got ${String(err)}`);
    }
    assert(
      reasons.includes(err.reason),
      `expected reason ${reasons.join("|")}, got "${err.reason}"`,
    );
    return err;
  }
  throw new Error(`expected FrameError (${reasons.join("|")}), nothing was thrown`);
}

// ---- fixtures ----

/** Codecs made by the running test; closed after it (each holds a cipher when keyed). */
const made: { close(): void }[] = [];

function newSealer(keys?: DirectionKeys, epochBytes?: number): FrameSealer {
  const s = new FrameSealer(keys, epochBytes);
  made.push(s);
  return s;
}

function newOpener(keys: DirectionKeys | undefined, max: number, epochBytes?: number): FrameOpener {
  const o = new FrameOpener(keys, max, epochBytes);
  made.push(o);
  return o;
}

/** Deno.test that closes the codecs the test made, before the resource sanitizer looks. */
function test(name: string, fn: () => void | Promise<void>): void {
  Deno.test(name, async () => {
    try {
      await fn();
    } finally {
      for (const c of made.splice(0)) c.close();
    }
  });
}

const MAX = 4096;

function randomKeys(): DirectionKeys {
  return {
    encKey: crypto.getRandomValues(new Uint8Array(32)),
    macKey: crypto.getRandomValues(new Uint8Array(32)),
  };
}

function sealAll(keys: DirectionKeys | undefined, bodies: Uint8Array[]): Uint8Array[] {
  const s = newSealer(keys);
  return bodies.map((b) => s.seal(b));
}

/** Feeds `wire` cut at `cuts` (any integers; taken modulo the length) and collects bodies. */
function openChunked(opener: FrameOpener, wire: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => (wire.length ? c % (wire.length + 1) : 0)))]
    .sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, wire.length]) {
    out.push(...opener.push(wire.subarray(prev, p)));
    prev = p;
  }
  opener.end();
  return out;
}

const bodiesArb = fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 12 });
const cutsArb = fc.array(fc.nat(), { maxLength: 30 });

// ---- round trips ----

test("FrameOpener.push() yields the sealed bodies under any chunking (unkeyed)", () => {
  fc.assert(
    fc.property(bodiesArb, cutsArb, (bodies, cuts) => {
      const wire = concat(...sealAll(undefined, bodies));
      assertBodies(openChunked(newOpener(undefined, MAX), wire, cuts), bodies);
    }),
  );
});

test("FrameOpener.push() yields the sealed bodies under any chunking (keyed)", () => {
  fc.assert(
    fc.property(bodiesArb, cutsArb, (bodies, cuts) => {
      const keys = randomKeys();
      const wire = concat(...sealAll(keys, bodies));
      assertBodies(openChunked(newOpener(keys, MAX), wire, cuts), bodies);
    }),
  );
});

test("FrameOpener.push() yields the sealed bodies when fed byte by byte", () => {
  fc.assert(
    fc.property(bodiesArb, fc.boolean(), (bodies, keyed) => {
      const keys = keyed ? randomKeys() : undefined;
      const wire = concat(...sealAll(keys, bodies));
      const opener = newOpener(keys, MAX);
      const got: Uint8Array[] = [];
      for (let i = 0; i < wire.length; i++) {
        got.push(...opener.push(wire.subarray(i, i + 1)));
        // a frame completes exactly at its last byte, never earlier
        assert(opener.pendingBytes <= i + 1);
      }
      opener.end();
      assertBodies(got, bodies);
      assert(opener.pendingBytes === 0, "bytes left buffered after whole frames");
    }),
    { numRuns: 50 },
  );
});

test("FrameOpener.push() returns bodies that later pushes do not overwrite", () => {
  for (const keys of [undefined, randomKeys()]) {
    const bodies = [new Uint8Array(100).fill(1), new Uint8Array(100).fill(2)];
    const frames = sealAll(keys, [...bodies, new Uint8Array(5000).fill(3)]);
    const opener = newOpener(keys, 8192);
    const first = opener.push(concat(frames[0], frames[1]));
    opener.push(frames[2]); // grows and shifts the internal buffer
    assertBodies(first, bodies);
  }
});

test("FrameSealer.seal() writes length|body without keys and length|ct|mac with keys", () => {
  const body = new TextEncoder().encode("hello, circuit");
  const plain = newSealer().seal(body);
  assert(plain.length === LENGTH_BYTES + body.length);
  assert(new DataView(plain.buffer, plain.byteOffset).getUint32(0) === body.length);
  assertBytesEqual(plain.subarray(LENGTH_BYTES), body);
  const sealed = newSealer(randomKeys()).seal(body);
  assert(sealed.length === LENGTH_BYTES + body.length + MAC_BYTES);
  assert(new DataView(sealed.buffer, sealed.byteOffset).getUint32(0) === body.length);
});

test("FrameSealer.seal() follows the documented wire format (ChaCha20, HMAC over len|ct|seq)", () => {
  const keys = randomKeys();
  const s = newSealer(keys);
  // One ChaCha20 key stream per direction: counter 0, nonce epoch 0 (u64) | 0 (u32); each
  // body takes the key stream bytes after the previous body's.
  const d = createDecipheriv("chacha20", keys.encKey, new Uint8Array(16));
  const bodies = [new TextEncoder().encode("first frame"), new Uint8Array(300).fill(0xab)];
  try {
    bodies.forEach((body, i) => {
      const f = s.seal(body);
      const header = f.subarray(0, LENGTH_BYTES);
      const ct = f.subarray(LENGTH_BYTES, LENGTH_BYTES + body.length);
      const seq = new Uint8Array(8);
      new DataView(seq.buffer).setBigUint64(0, BigInt(i));
      // MAC = HMAC-SHA256(macKey, length u32 | ciphertext | seq u64)
      const mac = createHmac("sha256", keys.macKey).update(header).update(ct).update(seq)
        .digest();
      assertBytesEqual(f.subarray(LENGTH_BYTES + body.length), new Uint8Array(mac), "mac");
      assertBytesEqual(new Uint8Array(d.update(ct)), body, "plaintext");
    });
  } finally {
    d.final();
  }
});

test("FrameSealer.seal() output stays intact while later frames are sealed (shared slabs)", () => {
  // Small frames are carved from 64 KiB slabs: 2000 frames of 100-300 bytes span several
  // slabs, and each must still open after all the others were sealed.
  const keys = randomKeys();
  const s = newSealer(keys), o = newOpener(keys, MAX);
  const bodies = Array.from({ length: 2000 }, (_, i) => new Uint8Array(100 + (i % 201)).fill(i));
  const frames = bodies.map((b) => s.seal(b));
  const opened = frames.flatMap((f) => o.push(f));
  assert(opened.length === bodies.length, `opened ${opened.length} frames`);
  opened.forEach((b, i) => assertBytesEqual(b, bodies[i], `frame ${i}`));
});

test("FrameSealer.seal() moves to the next nonce before a body would pass the epoch", () => {
  const keys = randomKeys();
  const epoch = 100;
  const s = newSealer(keys, epoch);
  const body = (n: number, b: number) => new Uint8Array(n).fill(b);
  // 60 + 40 fill epoch 0 exactly; the next 30 would pass it, so it starts epoch 1 at 0.
  const bodies = [body(60, 1), body(40, 2), body(30, 3), body(70, 4), body(10, 5)];
  const epochs = [0, 0, 1, 1, 2];
  const streams = new Map<number, ReturnType<typeof createDecipheriv>>();
  try {
    bodies.forEach((b, i) => {
      const f = s.seal(b);
      const ct = f.subarray(LENGTH_BYTES, LENGTH_BYTES + b.length);
      let d = streams.get(epochs[i]);
      if (!d) {
        const iv = new Uint8Array(16);
        new DataView(iv.buffer).setBigUint64(4, BigInt(epochs[i]));
        d = createDecipheriv("chacha20", keys.encKey, iv);
        streams.set(epochs[i], d);
      }
      assertBytesEqual(new Uint8Array(d.update(ct)), b, `body ${i}`);
    });
  } finally {
    for (const d of streams.values()) d.final();
  }
  // And an opener with the same epoch size reads them all back, however they are cut.
  const again = newSealer(keys, epoch);
  const wire = concat(...bodies.map((b) => again.seal(b)));
  assertBodies(openChunked(newOpener(keys, MAX, epoch), wire, [7, 50, 101, 180]), bodies);
});

test("a closed FrameSealer or FrameOpener refuses keyed work instead of reusing key stream", () => {
  const keys = randomKeys();
  const s = newSealer(keys);
  const o = newOpener(keys, MAX);
  const frame = s.seal(new Uint8Array(8));
  s.close();
  o.close();
  let threw = 0;
  try {
    s.seal(new Uint8Array(8));
  } catch {
    threw++;
  }
  try {
    o.push(frame);
  } catch {
    threw++;
  }
  assert(threw === 2, `expected both to throw, ${threw} did`);
});

// ---- tampering ----

test("FrameOpener.push() rejects any single flipped bit in a keyed frame", () => {
  // Two trailing 4000-byte frames guarantee that a flipped length bit that grows the frame
  // (up to MAX) still has enough bytes behind it for the MAC to be checked.
  const filler = [new Uint8Array(4000), new Uint8Array(4000)];
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 5 }),
      fc.nat(),
      fc.nat(),
      fc.integer({ min: 0, max: 7 }),
      fc.array(fc.nat(), { maxLength: 5 }),
      (bodies, frameIdx, posSeed, bit, cuts) => {
        const keys = randomKeys();
        const frames = sealAll(keys, [...bodies, ...filler]);
        const i = frameIdx % bodies.length;
        const pos = posSeed % frames[i].length;
        frames[i][pos] ^= 1 << bit;
        const opener = newOpener(keys, MAX);
        const err = assertFrameError(
          () => openChunked(opener, concat(...frames), cuts),
          ["bad mac", "oversized"],
        );
        if (pos >= LENGTH_BYTES) assert(err.reason === "bad mac", `got ${err.reason}`);
      },
    ),
    { numRuns: 300 },
  );
});

test("FrameOpener.push() rejects a flipped bit at every position of one keyed frame", () => {
  const keys = randomKeys();
  const body = crypto.getRandomValues(new Uint8Array(40));
  const [frame, ...rest] = sealAll(keys, [body, new Uint8Array(4000), new Uint8Array(4000)]);
  for (let pos = 0; pos < frame.length; pos++) {
    for (let bit = 0; bit < 8; bit++) {
      const t = frame.slice();
      t[pos] ^= 1 << bit;
      assertFrameError(
        () => newOpener(keys, MAX).push(concat(t, ...rest)),
        ["bad mac", "oversized"],
      );
    }
  }
});

test("FrameOpener.push() rejects a replayed keyed frame", () => {
  const keys = randomKeys();
  const [f0] = sealAll(keys, [new Uint8Array([1, 2, 3])]);
  const opener = newOpener(keys, MAX);
  assertBodies(opener.push(f0), [new Uint8Array([1, 2, 3])]);
  const err = assertFrameError(() => opener.push(f0), ["bad mac"]);
  assert(err.message.includes("MAC mismatch"));
});

test("FrameOpener.push() rejects two swapped keyed frames", () => {
  const keys = randomKeys();
  const [f0, f1] = sealAll(keys, [new Uint8Array([1]), new Uint8Array([2])]);
  assertFrameError(() => newOpener(keys, MAX).push(f1), ["bad mac"]);
  assertFrameError(() => newOpener(keys, MAX).push(concat(f1, f0)), ["bad mac"]);
});

test("FrameOpener.push() rejects a stream with a dropped keyed frame", () => {
  const keys = randomKeys();
  const [f0, , f2] = sealAll(keys, [new Uint8Array([1]), new Uint8Array([2]), new Uint8Array([3])]);
  const opener = newOpener(keys, MAX);
  assertBodies(opener.push(f0), [new Uint8Array([1])]);
  assertFrameError(() => opener.push(f2), ["bad mac"]);
});

test("FrameOpener.push() rejects keyed frames sealed under other keys", () => {
  const a = randomKeys();
  const macOnly: DirectionKeys = { encKey: a.encKey, macKey: randomKeys().macKey };
  const [f] = sealAll(a, [new Uint8Array([9, 9, 9])]);
  assertFrameError(() => newOpener(randomKeys(), MAX).push(f), ["bad mac"]);
  assertFrameError(() => newOpener(macOnly, MAX).push(f), ["bad mac"]);
  // an unkeyed frame read by a keyed opener: it lacks the MAC (truncated), and whatever
  // follows in place of the MAC does not match
  const [plain] = sealAll(undefined, [new Uint8Array(64)]);
  const o1 = newOpener(a, MAX);
  assert(o1.push(plain).length === 0);
  assertFrameError(() => o1.end(), ["truncated"]);
  assertFrameError(() => o1.push(new Uint8Array(MAC_BYTES)), ["bad mac"]);
});

// ---- truncation and size limits ----

test("FrameOpener.end() throws truncated after a partial frame", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 300 }),
      fc.boolean(),
      fc.nat(),
      (body, keyed, cutSeed) => {
        const keys = keyed ? randomKeys() : undefined;
        const [f] = sealAll(keys, [body]);
        const keep = 1 + (cutSeed % (f.length - 1)); // 1 .. length-1 bytes
        const opener = newOpener(keys, MAX);
        assert(opener.push(f.subarray(0, keep)).length === 0, "partial frame yielded a body");
        assert(opener.pendingBytes === keep);
        assertFrameError(() => opener.end(), ["truncated"]);
      },
    ),
  );
});

test("FrameOpener.end() accepts a stream that ends on a frame boundary", () => {
  const keys = randomKeys();
  const opener = newOpener(keys, MAX);
  opener.end(); // empty stream
  opener.push(concat(...sealAll(keys, [new Uint8Array(0), new Uint8Array(7)])));
  opener.end();
  assert(opener.pendingBytes === 0);
});

test("FrameOpener.push() throws oversized on the length prefix alone", () => {
  for (const keys of [undefined, randomKeys()]) {
    for (const n of [MAX + 1, 0x7fffffff, 0xffffffff]) {
      const prefix = new Uint8Array(LENGTH_BYTES);
      new DataView(prefix.buffer).setUint32(0, n);
      const opener = newOpener(keys, MAX);
      // split the prefix too: nothing happens until all four bytes are in
      assert(opener.push(prefix.subarray(0, 3)).length === 0);
      const err = assertFrameError(() => opener.push(prefix.subarray(3)), ["oversized"]);
      assert(err.message.includes(String(n)), err.message);
    }
  }
});

test("FrameOpener.push() accepts a body of exactly maxFrameBytes", () => {
  for (const keys of [undefined, randomKeys()]) {
    const body = crypto.getRandomValues(new Uint8Array(MAX));
    assertBodies(newOpener(keys, MAX).push(sealAll(keys, [body])[0]), [body]);
    const big = sealAll(keys, [new Uint8Array(MAX + 1)])[0];
    assertFrameError(() => newOpener(keys, MAX).push(big), ["oversized"]);
  }
});

// ---- garbage ----

test("FrameOpener.push() and end() throw only FrameError on garbage bytes", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 3000 }),
      cutsArb,
      fc.boolean(),
      (garbage, cuts, keyed) => {
        const opener = newOpener(keyed ? randomKeys() : undefined, MAX);
        try {
          openChunked(opener, garbage, cuts);
        } catch (err) {
          if (!(err instanceof FrameError)) throw err;
        }
      },
    ),
    { numRuns: 300 },
  );
});

test("FrameOpener.push() rejects garbage with a small length prefix as bad mac (keyed)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 40, maxLength: 300 }), (garbage) => {
      const g = garbage.slice();
      new DataView(g.buffer).setUint32(0, g.length - LENGTH_BYTES - MAC_BYTES);
      assertFrameError(() => newOpener(randomKeys(), MAX).push(g), ["bad mac"]);
    }),
  );
});

// ---- confidentiality ----

test("FrameSealer.seal() output hides the body and differs for equal bodies", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 300 }), (body) => {
      const keys = randomKeys();
      const s = newSealer(keys);
      const a = s.seal(body);
      const b = s.seal(body);
      const ctA = a.subarray(LENGTH_BYTES, LENGTH_BYTES + body.length);
      const ctB = b.subarray(LENGTH_BYTES, LENGTH_BYTES + body.length);
      assert(!equal(ctA, body), "ciphertext equals plaintext");
      assert(!equal(ctA, ctB), "equal bodies gave equal ciphertext");
      assert(!equal(a.subarray(-MAC_BYTES), b.subarray(-MAC_BYTES)), "equal MACs");
      // and both still open, in order
      assertBodies(newOpener(keys, MAX).push(concat(a, b)), [body, body]);
    }),
  );
});

test("FrameSealer.seal() output differs between two sealers with different keys", () => {
  const body = new Uint8Array(64);
  const a = newSealer(randomKeys()).seal(body);
  const b = newSealer(randomKeys()).seal(body);
  assert(!equal(a, b));
});

Deno.test("FrameSealer and FrameOpener release their one cipher each on close()", () => {
  // The resource sanitizer fails this test if a keyed codec leaves a cryptoCipher
  // resource open after close() (commit 802de26 leaked one per frame). No helper here:
  // the test closes them itself, with `using`.
  const keys = randomKeys();
  using s = new FrameSealer(keys);
  using o = new FrameOpener(keys, MAX);
  for (let i = 0; i < 10; i++) o.push(s.seal(new Uint8Array(8)));
});

test("FrameSealer.sealParts() gives the bytes of seal() on the joined parts, keyed or not (property)", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.uint8Array({ maxLength: 40 }),
          fc.integer({ min: 4000, max: 9000 }).map((n) => new Uint8Array(n).fill(n & 0xff)),
        ),
        { maxLength: 8 },
      ),
      fc.boolean(),
      (parts, keyed) => {
        const keys = keyed ? randomKeys() : undefined;
        const joined = concat(...parts);
        // Two frames each, so the second starts mid key stream.
        const a = newSealer(keys), b = newSealer(keys);
        const o = newOpener(keys, 1 << 20);
        for (let i = 0; i < 2; i++) {
          const f = a.sealParts(parts, joined.length);
          assertBytesEqual(f, b.seal(joined), `frame ${i}`);
          assertBodies(o.push(f), [joined]);
        }
      },
    ),
    { numRuns: 150 },
  );
});

test("FrameOpener.space()/commit() read straight into the opener give the bodies (property)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 3000 }), { minLength: 1, maxLength: 12 }),
      fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 20 }),
      fc.boolean(),
      (bodies, reads, keyed) => {
        const keys = keyed ? randomKeys() : undefined;
        const wire = concat(...sealAll(keys, bodies));
        const o = newOpener(keys, MAX);
        const got: Uint8Array[] = [];
        for (let off = 0, i = 0; off < wire.length; i++) {
          const want = reads[i % reads.length];
          const space = o.space(want); // may hand out more than asked: take only `want`
          const n = Math.min(want, space.length, wire.length - off);
          space.set(wire.subarray(off, off + n));
          got.push(...o.commit(n));
          off += n;
        }
        o.end();
        assertBodies(got, bodies);
      },
    ),
    { numRuns: 200 },
  );
});

test("sealParts() and the opener agree on the epoch however a body is split (property, tiny epochs)", () => {
  // Issue 18, item 6: the sealer moved to the next epoch per part of a body, the opener per
  // whole body, so a multi-part body crossing an epoch boundary opened to garbage behind a
  // valid MAC. Both now decide once per body.
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 20_000 }),
      fc.array(
        fc.array(
          fc.oneof(
            fc.uint8Array({ maxLength: 64 }),
            fc.integer({ min: 4096, max: 12_000 }).map((n) => new Uint8Array(n).fill(n & 0xff)),
          ),
          { maxLength: 6 },
        ),
        { minLength: 1, maxLength: 8 },
      ),
      fc.array(fc.integer({ min: 0, max: 200_000 }), { maxLength: 6 }),
      (epoch, frames, cuts) => {
        const keys = randomKeys();
        const s = newSealer(keys, epoch);
        const bodies = frames.map((parts) => concat(...parts));
        const wire = concat(...frames.map((parts, i) => {
          // A copy: sealParts with reuse may hand back memory the next call overwrites.
          return s.sealParts(parts, bodies[i].length, true).slice();
        }));
        const o = newOpener(keys, 1 << 20, epoch);
        assertBodies(openChunked(o, wire, cuts), bodies);
        o.end();
      },
    ),
    { numRuns: 300 },
  );
});
