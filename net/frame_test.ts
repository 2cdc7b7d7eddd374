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

// ---- tiny local assertion helpers (no @std) ----

function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function assertBytesEqual(got: Uint8Array, want: Uint8Array, msg = ""): void {
  if (!bytesEqual(got, want)) {
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

const MAX = 4096;

function randomKeys(): DirectionKeys {
  return {
    encKey: crypto.getRandomValues(new Uint8Array(32)),
    macKey: crypto.getRandomValues(new Uint8Array(32)),
  };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function sealAll(keys: DirectionKeys | undefined, bodies: Uint8Array[]): Uint8Array[] {
  const s = new FrameSealer(keys);
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

Deno.test("FrameOpener.push() yields the sealed bodies under any chunking (unkeyed)", () => {
  fc.assert(
    fc.property(bodiesArb, cutsArb, (bodies, cuts) => {
      const wire = concat(sealAll(undefined, bodies));
      assertBodies(openChunked(new FrameOpener(undefined, MAX), wire, cuts), bodies);
    }),
  );
});

Deno.test("FrameOpener.push() yields the sealed bodies under any chunking (keyed)", () => {
  fc.assert(
    fc.property(bodiesArb, cutsArb, (bodies, cuts) => {
      const keys = randomKeys();
      const wire = concat(sealAll(keys, bodies));
      assertBodies(openChunked(new FrameOpener(keys, MAX), wire, cuts), bodies);
    }),
  );
});

Deno.test("FrameOpener.push() yields the sealed bodies when fed byte by byte", () => {
  fc.assert(
    fc.property(bodiesArb, fc.boolean(), (bodies, keyed) => {
      const keys = keyed ? randomKeys() : undefined;
      const wire = concat(sealAll(keys, bodies));
      const opener = new FrameOpener(keys, MAX);
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

Deno.test("FrameOpener.push() returns bodies that later pushes do not overwrite", () => {
  for (const keys of [undefined, randomKeys()]) {
    const bodies = [new Uint8Array(100).fill(1), new Uint8Array(100).fill(2)];
    const frames = sealAll(keys, [...bodies, new Uint8Array(5000).fill(3)]);
    const opener = new FrameOpener(keys, 8192);
    const first = opener.push(concat([frames[0], frames[1]]));
    opener.push(frames[2]); // grows and shifts the internal buffer
    assertBodies(first, bodies);
  }
});

Deno.test("FrameSealer.seal() writes length|body without keys and length|ct|mac with keys", () => {
  const body = new TextEncoder().encode("hello, circuit");
  const plain = new FrameSealer().seal(body);
  assert(plain.length === LENGTH_BYTES + body.length);
  assert(new DataView(plain.buffer).getUint32(0) === body.length);
  assertBytesEqual(plain.subarray(LENGTH_BYTES), body);
  const sealed = new FrameSealer(randomKeys()).seal(body);
  assert(sealed.length === LENGTH_BYTES + body.length + MAC_BYTES);
  assert(new DataView(sealed.buffer).getUint32(0) === body.length);
});

Deno.test("FrameSealer.seal() follows the documented wire format (ChaCha20, HMAC over len|ct|seq)", () => {
  const keys = randomKeys();
  const s = new FrameSealer(keys);
  const bodies = [new TextEncoder().encode("first frame"), new Uint8Array(300).fill(0xab)];
  bodies.forEach((body, i) => {
    const f = s.seal(body);
    const header = f.subarray(0, LENGTH_BYTES);
    const ct = f.subarray(LENGTH_BYTES, LENGTH_BYTES + body.length);
    const seq = new Uint8Array(8);
    new DataView(seq.buffer).setBigUint64(0, BigInt(i));
    // MAC = HMAC-SHA256(macKey, length u32 | ciphertext | seq u64)
    const mac = createHmac("sha256", keys.macKey).update(header).update(ct).update(seq).digest();
    assertBytesEqual(f.subarray(LENGTH_BYTES + body.length), new Uint8Array(mac), "mac");
    // ciphertext = ChaCha20(encKey, counter 0, nonce seq u64 | 0 u32)
    const iv = new Uint8Array(16);
    iv.set(seq, 4);
    const d = createDecipheriv("chacha20", keys.encKey, iv);
    const pt = new Uint8Array(d.update(ct));
    d.final();
    assertBytesEqual(pt, body, "plaintext");
  });
});

// ---- tampering ----

Deno.test("FrameOpener.push() rejects any single flipped bit in a keyed frame", () => {
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
        const opener = new FrameOpener(keys, MAX);
        const err = assertFrameError(
          () => openChunked(opener, concat(frames), cuts),
          ["bad mac", "oversized"],
        );
        if (pos >= LENGTH_BYTES) assert(err.reason === "bad mac", `got ${err.reason}`);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("FrameOpener.push() rejects a flipped bit at every position of one keyed frame", () => {
  const keys = randomKeys();
  const body = crypto.getRandomValues(new Uint8Array(40));
  const [frame, ...rest] = sealAll(keys, [body, new Uint8Array(4000), new Uint8Array(4000)]);
  for (let pos = 0; pos < frame.length; pos++) {
    for (let bit = 0; bit < 8; bit++) {
      const t = frame.slice();
      t[pos] ^= 1 << bit;
      assertFrameError(
        () => new FrameOpener(keys, MAX).push(concat([t, ...rest])),
        ["bad mac", "oversized"],
      );
    }
  }
});

Deno.test("FrameOpener.push() rejects a replayed keyed frame", () => {
  const keys = randomKeys();
  const [f0] = sealAll(keys, [new Uint8Array([1, 2, 3])]);
  const opener = new FrameOpener(keys, MAX);
  assertBodies(opener.push(f0), [new Uint8Array([1, 2, 3])]);
  const err = assertFrameError(() => opener.push(f0), ["bad mac"]);
  assert(err.message.includes("MAC mismatch"));
});

Deno.test("FrameOpener.push() rejects two swapped keyed frames", () => {
  const keys = randomKeys();
  const [f0, f1] = sealAll(keys, [new Uint8Array([1]), new Uint8Array([2])]);
  assertFrameError(() => new FrameOpener(keys, MAX).push(f1), ["bad mac"]);
  assertFrameError(() => new FrameOpener(keys, MAX).push(concat([f1, f0])), ["bad mac"]);
});

Deno.test("FrameOpener.push() rejects a stream with a dropped keyed frame", () => {
  const keys = randomKeys();
  const [f0, , f2] = sealAll(keys, [new Uint8Array([1]), new Uint8Array([2]), new Uint8Array([3])]);
  const opener = new FrameOpener(keys, MAX);
  assertBodies(opener.push(f0), [new Uint8Array([1])]);
  assertFrameError(() => opener.push(f2), ["bad mac"]);
});

Deno.test("FrameOpener.push() rejects keyed frames sealed under other keys", () => {
  const a = randomKeys();
  const macOnly: DirectionKeys = { encKey: a.encKey, macKey: randomKeys().macKey };
  const [f] = sealAll(a, [new Uint8Array([9, 9, 9])]);
  assertFrameError(() => new FrameOpener(randomKeys(), MAX).push(f), ["bad mac"]);
  assertFrameError(() => new FrameOpener(macOnly, MAX).push(f), ["bad mac"]);
  // an unkeyed frame read by a keyed opener: it lacks the MAC (truncated), and whatever
  // follows in place of the MAC does not match
  const [plain] = sealAll(undefined, [new Uint8Array(64)]);
  const o1 = new FrameOpener(a, MAX);
  assert(o1.push(plain).length === 0);
  assertFrameError(() => o1.end(), ["truncated"]);
  assertFrameError(() => o1.push(new Uint8Array(MAC_BYTES)), ["bad mac"]);
});

// ---- truncation and size limits ----

Deno.test("FrameOpener.end() throws truncated after a partial frame", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 300 }),
      fc.boolean(),
      fc.nat(),
      (body, keyed, cutSeed) => {
        const keys = keyed ? randomKeys() : undefined;
        const [f] = sealAll(keys, [body]);
        const keep = 1 + (cutSeed % (f.length - 1)); // 1 .. length-1 bytes
        const opener = new FrameOpener(keys, MAX);
        assert(opener.push(f.subarray(0, keep)).length === 0, "partial frame yielded a body");
        assert(opener.pendingBytes === keep);
        assertFrameError(() => opener.end(), ["truncated"]);
      },
    ),
  );
});

Deno.test("FrameOpener.end() accepts a stream that ends on a frame boundary", () => {
  const keys = randomKeys();
  const opener = new FrameOpener(keys, MAX);
  opener.end(); // empty stream
  opener.push(concat(sealAll(keys, [new Uint8Array(0), new Uint8Array(7)])));
  opener.end();
  assert(opener.pendingBytes === 0);
});

Deno.test("FrameOpener.push() throws oversized on the length prefix alone", () => {
  for (const keys of [undefined, randomKeys()]) {
    for (const n of [MAX + 1, 0x7fffffff, 0xffffffff]) {
      const prefix = new Uint8Array(LENGTH_BYTES);
      new DataView(prefix.buffer).setUint32(0, n);
      const opener = new FrameOpener(keys, MAX);
      // split the prefix too: nothing happens until all four bytes are in
      assert(opener.push(prefix.subarray(0, 3)).length === 0);
      const err = assertFrameError(() => opener.push(prefix.subarray(3)), ["oversized"]);
      assert(err.message.includes(String(n)), err.message);
    }
  }
});

Deno.test("FrameOpener.push() accepts a body of exactly maxFrameBytes", () => {
  for (const keys of [undefined, randomKeys()]) {
    const body = crypto.getRandomValues(new Uint8Array(MAX));
    assertBodies(new FrameOpener(keys, MAX).push(sealAll(keys, [body])[0]), [body]);
    const big = sealAll(keys, [new Uint8Array(MAX + 1)])[0];
    assertFrameError(() => new FrameOpener(keys, MAX).push(big), ["oversized"]);
  }
});

// ---- garbage ----

Deno.test("FrameOpener.push() and end() throw only FrameError on garbage bytes", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 3000 }),
      cutsArb,
      fc.boolean(),
      (garbage, cuts, keyed) => {
        const opener = new FrameOpener(keyed ? randomKeys() : undefined, MAX);
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

Deno.test("FrameOpener.push() rejects garbage with a small length prefix as bad mac (keyed)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 40, maxLength: 300 }), (garbage) => {
      const g = garbage.slice();
      new DataView(g.buffer).setUint32(0, g.length - LENGTH_BYTES - MAC_BYTES);
      assertFrameError(() => new FrameOpener(randomKeys(), MAX).push(g), ["bad mac"]);
    }),
  );
});

// ---- confidentiality ----

Deno.test("FrameSealer.seal() output hides the body and differs for equal bodies", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 300 }), (body) => {
      const keys = randomKeys();
      const s = new FrameSealer(keys);
      const a = s.seal(body);
      const b = s.seal(body);
      const ctA = a.subarray(LENGTH_BYTES, LENGTH_BYTES + body.length);
      const ctB = b.subarray(LENGTH_BYTES, LENGTH_BYTES + body.length);
      assert(!bytesEqual(ctA, body), "ciphertext equals plaintext");
      assert(!bytesEqual(ctA, ctB), "equal bodies gave equal ciphertext");
      assert(!bytesEqual(a.subarray(-MAC_BYTES), b.subarray(-MAC_BYTES)), "equal MACs");
      // and both still open, in order
      assertBodies(new FrameOpener(keys, MAX).push(concat([a, b])), [body, body]);
    }),
  );
});

Deno.test("FrameSealer.seal() output differs between two sealers with different keys", () => {
  const body = new Uint8Array(64);
  const a = new FrameSealer(randomKeys()).seal(body);
  const b = new FrameSealer(randomKeys()).seal(body);
  assert(!bytesEqual(a, b));
});

Deno.test("FrameSealer.seal() and FrameOpener.push() release their cipher resources", () => {
  // The resource sanitizer fails this test if a keyed frame leaves a cryptoCipher or
  // cryptoDecipher resource open (commit 802de26 leaked one per frame: no final()).
  const keys = randomKeys();
  const s = new FrameSealer(keys);
  const o = new FrameOpener(keys, MAX);
  for (let i = 0; i < 10; i++) o.push(s.seal(new Uint8Array(8)));
});
