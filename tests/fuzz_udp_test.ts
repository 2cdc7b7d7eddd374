/**
 * A bounded fuzz pass over the UDP decoders through real sockets: membership packets to
 * a keyed server (signed with the test's key, so decoding past the MAC is exercised) and
 * to a keyless one, and discovery packets to a keyed server in a network namespace.
 * Random bytes, truncations, crafted msgpack (deep nesting, huge headers) and valid
 * packets with absurd fields. Every server must survive, count what it dropped, answer
 * a real client, and the keyed pair must still be one cluster. Each pass runs a fixed
 * seed and a random one, printed on failure.
 *
 * Fuzzed addresses and URLs are kept on loopback (or in the namespace), so nothing a
 * server learns from a fuzzed packet sends traffic anywhere else.
 */

import fc from "fast-check";
import { Packr } from "msgpackr/pack";
import {
  assert,
  cli,
  keyFile,
  missingTool,
  Server,
  skipTest,
  TempDir,
  waitFor,
} from "./_harness.ts";
import { Lan, netnsUnavailable } from "./_netns.ts";
import { readKeyFile } from "../net/keys.ts";
import { hmacSha256 } from "../net/hmac.ts";
import { parseUrl } from "../net/url.ts";
import { MAX_INCARNATION, MESSAGE_CODES } from "../net/membership/messages.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const packr = new Packr({ useRecords: false, moreTypes: false });
/** Properties run per seed and target kind; two seeds per pass. */
const RUNS = 250;
const FIXED_SEED = 0x5eed;

const LOOPBACK_ADDR = { host: "127.0.0.1", port: 9 }; // discard: nothing listens
const LOOPBACK_URL = "circuit://127.0.0.1:9/1/Q0123456789abcdef";

/** Values no decoder should trust. */
const absurd: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    2 ** 53 - 1,
    2 ** 53,
    MAX_INCARNATION,
    MAX_INCARNATION + 1,
    -1,
    NaN,
    Infinity,
    -Infinity,
    1e308,
    0.5,
    null,
    true,
    "",
    "\n\u001b[2J\u0000",
  ),
  fc.anything({ maxDepth: 3, maxKeys: 5 }),
  fc.string({ maxLength: 400 }).map((s) => `${s}\n`), // never a usable host or URL
  fc.uint8Array({ maxLength: 300 }),
  fc.array(fc.integer(), { maxLength: 300 }),
);

/** msgpack no encoder makes: deep nesting and headers that claim huge sizes. */
const crafted: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.integer({ min: 1, max: 60_000 }).map((n) => {
    const b = new Uint8Array(n + 1).fill(0x91); // [[[[… nil
    b[n] = 0xc0;
    return b;
  }),
  fc.constantFrom(
    new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]), // array32 of 2^32 − 1
    new Uint8Array([0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 0x74]), // map32
    new Uint8Array([0xdb, 0xff, 0xff, 0xff, 0xff, 0x41]), // str32
    new Uint8Array([0xc6, 0x7f, 0xff, 0xff, 0xff]), // bin32
    new Uint8Array([0xc1]), // never used
    new Uint8Array([0xd4, 0xff, 0x00]), // fixext: timestamp-like
  ),
);

/** A valid membership message on the wire (`t` and fields), about loopback only. */
function validMessages(victim: string): Record<string, unknown>[] {
  const record = {
    id: victim,
    url: LOOPBACK_URL,
    addr: LOOPBACK_ADDR,
    inc: 1,
    start: 1,
    status: "alive",
  };
  return [
    { t: MESSAGE_CODES.ping, seq: 1, id: victim },
    { t: MESSAGE_CODES.indirectPing, seq: 2, id: victim, addr: LOOPBACK_ADDR, nack: true },
    { t: MESSAGE_CODES.ack, seq: 3 },
    { t: MESSAGE_CODES.nack, seq: 4 },
    {
      t: MESSAGE_CODES.alive,
      id: victim,
      url: LOOPBACK_URL,
      addr: LOOPBACK_ADDR,
      inc: 2,
      start: 1,
    },
    { t: MESSAGE_CODES.suspect, id: victim, inc: 1, from: "ffffffffffffffff" },
    { t: MESSAGE_CODES.dead, id: victim, inc: 1, from: "ffffffffffffffff" },
    { t: MESSAGE_CODES.left, id: victim, inc: 1 },
    { t: MESSAGE_CODES.sync, seq: 5, reply: true, answer: false, records: [record] },
  ];
}

/** A message with one field (never an address's host) set to something absurd. */
function mutatedMessage(victims: string[]): fc.Arbitrary<Uint8Array> {
  const base = fc.constantFrom(...victims).chain((v) => fc.constantFrom(...validMessages(v)));
  const field = fc.constantFrom(
    "t",
    "seq",
    "id",
    "inc",
    "from",
    "start",
    "url",
    "nack",
    "reply",
    "records",
    "port",
    "extra",
  );
  return fc.tuple(base, field, absurd, fc.nat({ max: 20_000 })).map(([msg, key, value, n]) => {
    const out: Record<string, unknown> = { ...msg };
    if (key === "port") out.addr = { ...LOOPBACK_ADDR, port: value };
    else if (key === "records" && n % 3 === 0) {
      out.records = new Array(n).fill((msg.records as unknown[] ?? [null])[0]);
    } else out[key] = value;
    return packr.pack(out);
  });
}

/** A membership packet body: the envelope, sometimes bent, around fuzzed messages. */
function membershipBody(victims: string[]): fc.Arbitrary<Uint8Array> {
  const message = fc.oneof(mutatedMessage(victims), crafted, fc.uint8Array({ maxLength: 200 }));
  const envelope = fc.record({
    messages: fc.array(message, { minLength: 0, maxLength: 4 }),
    bend: fc.constantFrom("none", "none", "v", "ts", "n", "m"),
    value: absurd,
  }).map(({ messages, bend, value }) => {
    const body: Record<string, unknown> = {
      v: 1,
      ts: Date.now(),
      n: crypto.getRandomValues(new Uint8Array(12)),
      m: messages,
    };
    if (bend !== "none") body[bend] = value;
    return packr.pack(body);
  });
  return fc.oneof({ weight: 4, arbitrary: envelope }, crafted, fc.uint8Array({ maxLength: 1400 }));
}

/** What to send: bytes, signed or not, maybe truncated. */
function datagram(body: fc.Arbitrary<Uint8Array>, sign: (b: Uint8Array) => Uint8Array) {
  return fc.tuple(body, fc.constantFrom("signed", "signed", "plain", "truncated"), fc.nat())
    .map(([b, how, cut]) => {
      const bytes = how === "plain" ? b : sign(b);
      const out = how === "truncated" ? bytes.subarray(0, cut % (bytes.length + 1)) : bytes;
      return out.length > 65_000 ? out.subarray(0, 65_000) : out;
    });
}

/** Run a property with a fixed seed, then a random one; name the seed of a failure. */
async function twoSeeds<T>(arb: fc.Arbitrary<T>, run: (v: T) => Promise<void>) {
  for (const seed of [FIXED_SEED, Date.now() % 2 ** 31]) {
    try {
      await fc.assert(fc.asyncProperty(arb, run), { seed, numRuns: RUNS, endOnFailure: true });
    } catch (err) {
      throw new Error(`fuzz failed with seed ${seed}: ${(err as Error).message}`);
    }
  }
}

/** The membership datagram counters of `stk`. */
interface Packets {
  dropped: Record<string, number>;
  malformedMessages: number;
}

async function stk(s: Server, key?: string): Promise<{ Membership: { packets: Packets } }> {
  const r = await cli(["stk", "-d", s.url, ...(key ? ["--hmac", key] : []), s.path]);
  assert(r.code === 0, `stk through ${s.url}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function lists(s: Server, key: string | undefined, want: Server[]): Promise<boolean> {
  const r = await cli(["ls", "-d", s.url, ...(key ? ["--hmac", key] : []), "/"]);
  return r.code === 0 &&
    JSON.stringify(r.stdout.split("\n").filter(Boolean).sort()) ===
      JSON.stringify(want.map((w) => w.path).sort());
}

/** Fail when the server has exited, with its stderr. */
async function assertAlive(s: Server, context = ""): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const exited = await Promise.race([
    s.status.then(() => true),
    new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 20))),
  ]);
  clearTimeout(timer);
  if (exited) throw new Error(`${s.url} died ${context}: ${await s.stderr()}`);
}

Deno.test("fuzz: membership packets to a keyed pair and a keyless server (real UDP)", async () => {
  using tmp = new TempDir();
  const keyPath = await keyFile(tmp.path);
  const key = await readKeyFile(keyPath);
  const args = ["--hmac", keyPath, "--membership", "test"];
  await using a = await Server.start({ args });
  await using b = await Server.start({ args: [...args, "-j", a.url] });
  await using c = await Server.start({ args: ["--membership", "test"] });
  await waitFor(
    async () => await lists(a, keyPath, [a, b]) && await lists(b, keyPath, [a, b]),
    "a cluster of two",
    10_000,
  );
  const sock = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: 0 });
  try {
    const targets = [a, c].map((s) => parseUrl(s.url));
    const victims = [b.path.slice(2), c.path.slice(2), "0123456789abcdef"];
    const sign = (body: Uint8Array) =>
      new Uint8Array([...hmacSha256(key, "circuit/1 membership", body), ...body]);
    let sent = 0;
    await twoSeeds(datagram(membershipBody(victims), sign), async (bytes) => {
      // The keyed server gets it as made; the keyless one the body alone.
      await sock.send(bytes, {
        transport: "udp",
        hostname: targets[0].host,
        port: targets[0].port,
      });
      await sock.send(bytes.length > 32 ? bytes.subarray(32) : bytes, {
        transport: "udp",
        hostname: targets[1].host,
        port: targets[1].port,
      });
      if (++sent % 50 === 0) await new Promise((r) => setTimeout(r, 5)); // let them read
    });
  } finally {
    sock.close();
  }
  for (const s of [a, b, c]) await assertAlive(s);
  const pa = (await stk(a, keyPath)).Membership.packets;
  const pc = (await stk(c)).Membership.packets;
  const drops = (p: Packets) =>
    Object.values(p.dropped as Record<string, number>).reduce((x, y) => x + y, 0) +
    p.malformedMessages;
  assert(
    pa.dropped.forged > 0 && pa.dropped.malformed > 0 && pa.malformedMessages > 0,
    `keyed counts: ${JSON.stringify(pa)}`,
  );
  assert(drops(pc) > 0, `keyless counts: ${JSON.stringify(pc)}`);
  // Fuzzed accusations of b (absurd incarnations included) are refuted: still one cluster
  // after the longest suspicion timeout of the test profile (1.6 s for two members).
  await new Promise((r) => setTimeout(r, 2500));
  await waitFor(
    async () => await lists(a, keyPath, [a, b]) && await lists(b, keyPath, [a, b]),
    "the pair to be one cluster again",
    15_000,
  );
  assert(await lists(c, undefined, [c]), "the keyless server answers a real client");
});

const why = await netnsUnavailable() ?? await missingTool(["ip"]);
if (why) {
  skipTest("fuzz: discovery packets", why);
} else {
  Deno.test("fuzz: discovery packets to a keyed server in a namespace (real UDP)", async () => {
    using tmp = new TempDir();
    const keyPath = await keyFile(tmp.path);
    const key = await readKeyFile(keyPath);
    await using lan = await Lan.create(2);
    const [h1, h2] = lan.hosts;
    const group = `239.77.${Deno.pid % 250}.${1 + Math.floor(Math.random() * 250)}:${
      17_000 + (Deno.pid % 1000)
    }`;
    const port = group.split(":")[1];
    await using d = await Server.start({
      prefix: h1.prefix,
      args: ["--if", h1.iface, "--hmac", keyPath, "--discover", group],
    });
    const mac = (body: Record<string, unknown>) =>
      hmacSha256(key, "circuit/1 discovery", packr.pack(body));
    const body = fc.record({
      t: fc.oneof(fc.constantFrom("announce", "query", "reply"), absurd),
      url: fc.oneof(fc.constant(LOOPBACK_URL), absurd),
      ts: fc.oneof(fc.constant(Date.now()), absurd),
      nonce: fc.oneof(fc.uint8Array({ minLength: 16, maxLength: 16 }), absurd),
      re: fc.oneof(fc.constant(undefined), absurd),
      extra: fc.oneof(fc.constant(undefined), absurd),
    }).map((f) => {
      const b: Record<string, unknown> = { v: 1, ...f };
      for (const k of Object.keys(b)) if (b[k] === undefined) delete b[k];
      try {
        return packr.pack({ ...b, mac: mac(b) });
      } catch {
        return packr.pack(b);
      }
    });
    const packets = datagram(
      fc.oneof({ weight: 4, arbitrary: body }, crafted, fc.uint8Array({ maxLength: 1400 })),
      (x) => x,
    )
      .map((x) => x.subarray(0, 1400)); // one argument each on a command line
    const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    for (const seed of [FIXED_SEED, Date.now() % 2 ** 31]) {
      const batch = fc.sample(packets, { seed, numRuns: RUNS }).filter((p) => p.length > 0);
      for (let i = 0; i < batch.length; i += 125) {
        const r = await new Deno.Command(h2.prefix[0], {
          args: [
            ...h2.prefix.slice(1),
            Deno.execPath(),
            "run",
            "-A",
            `${ROOT}tests/_udp_send.ts`,
            h1.addr,
            port,
            ...batch.slice(i, i + 125).map(hex),
          ],
          stdout: "null",
          stderr: "piped",
        }).output();
        assert(r.success, `sending failed: ${new TextDecoder().decode(r.stderr)}`);
      }
      await assertAlive(d, `seed ${seed}`);
    }
    const st = await cli(["stk", "-d", d.url, "--hmac", keyPath, d.path], { prefix: h1.prefix });
    const dropped = JSON.parse(st.stdout).Discovery.Dropped as Record<string, number>;
    assert(
      dropped.malformed > 0 && dropped.forged + dropped.stale + dropped.replayed >= 0,
      JSON.stringify(dropped),
    );
    const found = await cli(["ls", "--discover", group, "--hmac", keyPath, "/"], {
      prefix: h2.prefix,
    });
    assert(
      found.code === 0 && found.stdout.includes(d.path),
      `discovery still answers: ${found.stderr}`,
    );
  });
}
