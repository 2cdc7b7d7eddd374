/**
 * DNS elements against real servers, queried with real `dig`. Without dig the tests say
 * SKIPPED with the reason; under CI=true that is a failure. Everything binds and queries
 * 127.0.0.1 only.
 */

import dgram from "node:dgram";
import { Buffer } from "node:buffer";
import fc from "fast-check";
import { CircuitError, connect } from "../mod.ts";
import {
  assert,
  assertEquals,
  assertOneLineError,
  cli,
  Server,
  skipTest,
  waitFor,
} from "./_harness.ts";

const dec = new TextDecoder();

async function haveDig(): Promise<string | null> {
  try {
    const o = await new Deno.Command("dig", { args: ["-v"], stdout: "null", stderr: "null" })
      .output();
    return o.success ? null : "dig -v failed";
  } catch {
    return "dig is not installed (apt-get install dnsutils)";
  }
}

/** What dig printed, parsed. */
interface Dig {
  status: string;
  flags: string[];
  /** Answer-section records, whitespace collapsed to one space. */
  answers: string[];
  text: string;
}

async function dig(port: number, ...args: string[]): Promise<Dig> {
  const o = await new Deno.Command("dig", {
    args: ["@127.0.0.1", "-p", String(port), "+norec", "+time=2", "+tries=1", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = dec.decode(o.stdout);
  const section = text.split(";; ANSWER SECTION:\n")[1]?.split("\n\n")[0] ?? "";
  return {
    status: /status: ([A-Z]+)/.exec(text)?.[1] ?? `no reply: ${text}${dec.decode(o.stderr)}`,
    flags: (/;; flags: ([a-z ]*);/.exec(text)?.[1] ?? "").trim().split(" "),
    answers: section.split("\n").filter(Boolean).map((l) => l.split(/\s+/).join(" ")),
    text,
  };
}

/** Make a DNS element on 127.0.0.1 (a free port unless given); returns its port. */
async function mkdns(s: Server, name: string, addr = "127.0.0.1"): Promise<number> {
  const r = await cli(["mkdns", "-d", s.url, `${s.path}/${name}`, addr]);
  assertEquals([r.code, r.stderr], [0, ""], "mkdns");
  const peek = JSON.parse((await cli(["peek", "-d", s.url, `${s.path}/${name}`])).stdout);
  const m = /^127\.0\.0\.1:(\d+)$/.exec(peek.Address);
  assert(m, `peek shows a dialable address, got ${peek.Address}`);
  return Number(m[1]);
}

async function set(s: Server, name: string, ...rrs: string[]): Promise<void> {
  for (const rr of rrs) {
    const r = await cli(["set", "-d", s.url, `${s.path}/${name}`, rr]);
    assertEquals([r.code, r.stderr], [0, ""], `set ${rr}`);
  }
}

async function alive(s: Server, port: number): Promise<void> {
  assertEquals((await cli(["ls", "-d", s.url, "/"])).stdout, `${s.path}\n`, "server alive");
  assertEquals((await dig(port, "miek.nl", "MX")).status, "NOERROR", "element alive");
}

/** Send one UDP datagram and wait for a reply (null after `timeoutMs`). */
async function udpExchange(
  port: number,
  bytes: Uint8Array,
  timeoutMs = 1000,
): Promise<Uint8Array | null> {
  const sock = dgram.createSocket("udp4");
  try {
    return await new Promise<Uint8Array | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), timeoutMs);
      sock.once("message", (msg) => {
        clearTimeout(timer);
        resolve(new Uint8Array(msg));
      });
      sock.send(Buffer.from(bytes), port, "127.0.0.1");
    });
  } finally {
    await new Promise<void>((r) => sock.close(() => r()));
  }
}

async function tcpSend(port: number, bytes: Uint8Array): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(bytes).catch(() => {});
  } finally {
    conn.close();
  }
}

const MX1 = "miek.nl. 3600 IN MX 10 mx.miek.nl.";
const MX2 = "miek.nl. 3600 IN MX 20 mx2.miek.nl.";

const skip = await haveDig();

if (skip) {
  skipTest("dns elements", skip);
} else {
  Deno.test("mkdns, set two MX records: dig MX returns both, dig A none", async () => {
    await using s = await Server.start();
    const port = await mkdns(s, "dns");
    await set(s, "dns", MX1, MX2);
    const mx = await dig(port, "miek.nl", "MX");
    assertEquals(mx.status, "NOERROR");
    assert(mx.flags.includes("aa"), `authoritative: ${mx.flags}`);
    assertEquals(mx.answers.sort(), [
      "miek.nl. 3600 IN MX 10 mx.miek.nl.",
      "miek.nl. 3600 IN MX 20 mx2.miek.nl.",
    ]);
    const a = await dig(port, "miek.nl", "A");
    assertEquals([a.status, a.answers], ["NOERROR", []], "a known name without A is NODATA");
    const ls = await cli(["ls", "-l", "-d", s.url, `${s.path}/...`]);
    assertEquals(ls.stdout, `dns             ${s.path}/dns\n`);
  });

  Deno.test("on a loopback-only server, mkdns without a host listens on loopback only", async () => {
    await using plain = await Server.start();
    await using named = await Server.start({ args: ["-a", "localhost:0"] }); // URL host: localhost
    for (
      const [s, name, addr] of [
        [plain, "bare", []],
        [plain, "port-only", [":0"]],
        [named, "bare", []],
      ] as const
    ) {
      const r = await cli(["mkdns", "-d", s.url, `${s.path}/${name}`, ...addr]);
      assertEquals([r.code, r.stderr], [0, ""]);
      const peek = JSON.parse((await cli(["peek", "-d", s.url, `${s.path}/${name}`])).stdout);
      const port = Number(String(peek.Address).split(":").pop());
      // /proc/net/udp lists local addresses as hex: 0100007F is 127.0.0.1, 00000000 any.
      const local = (await Deno.readTextFile("/proc/net/udp")).split("\n")
        .map((l) => l.trim().split(/\s+/)[1] ?? "")
        .filter((a) => a.endsWith(`:${port.toString(16).toUpperCase().padStart(4, "0")}`));
      assertEquals(local, [`0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`], name);
    }
  });

  Deno.test("dig gets A, AAAA, TXT, SRV and CNAME answers, over UDP and TCP", async () => {
    await using s = await Server.start();
    const port = await mkdns(s, "dns");
    await set(
      s,
      "dns",
      "foo 60 IN A 1.2.3.4",
      "foo 60 IN AAAA 2001:db8::1",
      'txt.example. 30 IN TXT "hello world" "two"',
      "_sip._tcp.example. 60 IN SRV 10 5 5060 sip.example.",
      "www.example. 60 IN CNAME foo.",
    );
    for (const tcp of [[], ["+tcp"]]) {
      assertEquals((await dig(port, "foo", "A", ...tcp)).answers, ["foo. 60 IN A 1.2.3.4"]);
      assertEquals((await dig(port, "foo", "AAAA", ...tcp)).answers, [
        "foo. 60 IN AAAA 2001:db8::1",
      ]);
      assertEquals((await dig(port, "txt.example", "TXT", ...tcp)).answers, [
        'txt.example. 30 IN TXT "hello world" "two"',
      ]);
      assertEquals((await dig(port, "_sip._tcp.example", "SRV", ...tcp)).answers, [
        "_sip._tcp.example. 60 IN SRV 10 5 5060 sip.example.",
      ]);
      assertEquals((await dig(port, "www.example", "A", ...tcp)).answers, [
        "www.example. 60 IN CNAME foo.",
        "foo. 60 IN A 1.2.3.4",
      ]);
    }
  });

  Deno.test("unknown names get NXDOMAIN; names match case-insensitively", async () => {
    await using s = await Server.start();
    const port = await mkdns(s, "dns");
    await set(s, "dns", MX1, "Foo.Example. 60 IN A 10.0.0.1");
    assertEquals((await dig(port, "nope.example", "A")).status, "NXDOMAIN");
    const upper = await dig(port, "MIEK.NL", "MX");
    assertEquals([upper.status, upper.answers], ["NOERROR", [
      "MIEK.NL. 3600 IN MX 10 mx.miek.nl.",
    ]]);
    assertEquals((await dig(port, "foo.EXAMPLE", "A")).answers, ["foo.EXAMPLE. 60 IN A 10.0.0.1"]);
  });

  Deno.test("30 TXT records: truncated (TC) over UDP, complete over TCP", async () => {
    await using s = await Server.start();
    const port = await mkdns(s, "dns");
    const rrs = Array.from(
      { length: 30 },
      (_, i) => `big. 60 IN TXT "${`${i}`.padStart(60, "x")}"`,
    );
    await set(s, "dns", ...rrs);
    const udp = await dig(port, "+ignore", "+bufsize=1232", "big", "TXT");
    assert(udp.flags.includes("tc"), `TC over UDP: ${udp.text}`);
    const plain = await dig(port, "+ignore", "+noedns", "big", "TXT");
    assert(plain.flags.includes("tc"), `TC without EDNS0: ${plain.text}`);
    const tcp = await dig(port, "+tcp", "big", "TXT");
    assertEquals([tcp.status, tcp.answers.length], ["NOERROR", 30]);
    assert(!tcp.flags.includes("tc"), "no TC over TCP");
    const fallback = await dig(port, "big", "TXT");
    assertEquals(fallback.answers.length, 30, "dig retries over TCP after TC");
    const edns = await dig(port, "+bufsize=4096", "+ignore", "big", "TXT");
    assertEquals(edns.answers.length, 30, "fits in the client's 4096-byte payload");
    assert(/; EDNS: version: 0.*udp: \d+/.test(edns.text), "replies with OPT");
  });

  Deno.test("unset removes a name, with or without the dot: then NXDOMAIN", async () => {
    await using s = await Server.start();
    const port = await mkdns(s, "dns");
    await set(s, "dns", MX1, MX2, "foo 60 IN A 1.2.3.4");
    const u1 = await cli(["unset", "-d", s.url, `${s.path}/dns`, "miek.nl"]);
    assertEquals([u1.code, u1.stderr], [0, ""]);
    assertEquals((await dig(port, "miek.nl", "MX")).status, "NXDOMAIN");
    const u2 = await cli(["unset", "-d", s.url, `${s.path}/dns`, "FOO."]);
    assertEquals([u2.code, u2.stderr], [0, ""]);
    assertEquals((await dig(port, "foo", "A")).status, "NXDOMAIN");
    const peek = JSON.parse((await cli(["peek", "-d", s.url, `${s.path}/dns`])).stdout);
    assertEquals(peek.Records, {});
  });

  Deno.test("peek prints Address and Records byte for byte", async () => {
    await using s = await Server.start();
    const port = await mkdns(s, "dns");
    await set(s, "dns", MX1, "foo 60 IN A 1.2.3.4");
    const r = await cli(["peek", "-d", s.url, `${s.path}/dns`]);
    assertEquals(
      r.stdout,
      "{\n" +
        `\t"Address": "127.0.0.1:${port}",\n` +
        '\t"Records": {\n' +
        '\t\t"foo.": [\n' +
        '\t\t\t"foo.\\t60\\tIN\\tA\\t1.2.3.4"\n' +
        "\t\t],\n" +
        '\t\t"miek.nl.": [\n' +
        '\t\t\t"miek.nl.\\t3600\\tIN\\tMX\\t10 mx.miek.nl."\n' +
        "\t\t]\n" +
        "\t}\n" +
        "}\n",
    );
  });

  Deno.test("a record that does not parse: one line naming the problem, exit 1", async () => {
    await using s = await Server.start();
    await mkdns(s, "dns");
    const cases: Array<[string, RegExp]> = [
      [
        "foo 60 IN A 1.2.3",
        /^Parsing record "foo 60 IN A 1\.2\.3" failed: "1\.2\.3" is not an IPv4/,
      ],
      ["foo 60 IN BOGUS x", /unknown or unsupported type "BOGUS"/],
      ["foo MX mx.", /MX needs PREFERENCE EXCHANGE/],
      ['foo TXT "open', /never closed/],
    ];
    for (const [rr, re] of cases) {
      assertOneLineError(await cli(["set", "-d", s.url, `${s.path}/dns`, rr]), re);
    }
    assertOneLineError(
      await cli(["set", "-d", s.url, `${s.path}/none`, "foo A 1.2.3.4"]),
      /No element/,
    );
    // unset checks a name as set does.
    assertOneLineError(
      await cli(["unset", "-d", s.url, `${s.path}/dns`, "bad..name"]),
      /empty label/,
    );
    assertOneLineError(
      await cli(["mkdns", "-d", s.url, `${s.path}/bad`, "nohost:99999"]),
      /ADDR|address/i,
    );
    const peek = JSON.parse((await cli(["peek", "-d", s.url, `${s.path}/dns`])).stdout);
    assertEquals(peek.Records, {}, "nothing was stored");
  });

  Deno.test("garbage, zero-question packets and floods leave element and server alive", async () => {
    await using s = await Server.start();
    const port = await mkdns(s, "dns");
    await set(s, "dns", MX1);
    // A header with no question: FORMERR, same id.
    const zero = await udpExchange(
      port,
      new Uint8Array([0xbe, 0xef, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    );
    assert(zero, "a reply to a zero-question packet");
    assertEquals([zero[0], zero[1], zero[2] >> 7, zero[3] & 0xf], [0xbe, 0xef, 1, 1], "FORMERR");
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 700 }), fc.boolean(), async (bytes, tcp) => {
        if (tcp) await tcpSend(port, bytes);
        else await udpExchange(port, bytes, 20);
      }),
      { numRuns: 150 },
    );
    // A flood: thousands of datagrams as fast as they go.
    const sock = dgram.createSocket("udp4");
    const q = Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0x61, 0, 0, 1, 0, 1]);
    for (let i = 0; i < 5000; i++) sock.send(q, port, "127.0.0.1");
    await new Promise<void>((r) => sock.close(() => r()));
    // A TCP peer that opens and sends half a message, then stalls.
    const stall = await Deno.connect({ hostname: "127.0.0.1", port });
    await stall.write(new Uint8Array([0, 40, 1, 2]));
    await alive(s, port);
    assertEquals((await dig(port, "+tcp", "miek.nl", "MX")).answers.length, 1);
    stall.close();
  });

  Deno.test("scrub while dig queries run: server lives, the port is free again", async () => {
    await using s = await Server.start();
    const port = await mkdns(s, "dns");
    await set(s, "dns", MX1);
    let stop = false, answered = 0;
    const loops = Array.from({ length: 4 }, async (_, i) => {
      while (!stop) {
        const r = await dig(port, ...(i % 2 ? ["+tcp"] : []), "+time=1", "miek.nl", "MX");
        if (r.status === "NOERROR") answered++;
      }
    });
    await waitFor(() => answered >= 8, "queries answered before scrub", 20000);
    const r = await cli(["scrub", "-d", s.url, `${s.path}/dns`]);
    stop = true;
    await Promise.all(loops);
    assertEquals([r.code, r.stderr], [0, ""]);
    assertEquals((await cli(["peek", "-d", s.url, `${s.path}/dns`])).stdout, "null\n");
    assertEquals((await cli(["ls", "-d", s.url, "/"])).stdout, `${s.path}\n`, "server alive");
    // The port is free for TCP and UDP.
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    const u = dgram.createSocket("udp4");
    await new Promise<void>((ok, fail) => {
      u.once("error", fail);
      u.bind(port, "127.0.0.1", () => ok());
    });
    await new Promise<void>((r) => u.close(() => r()));
    // And a new element can take it.
    assertEquals(await mkdns(s, "again", `127.0.0.1:${port}`), port);
    await set(s, "again", MX2);
    assertEquals((await dig(port, "miek.nl", "MX")).answers, [
      "miek.nl. 3600 IN MX 20 mx2.miek.nl.",
    ]);
  });

  Deno.test("several DNS elements per server answer from their own records", async () => {
    await using s = await Server.start();
    const a = await mkdns(s, "a"), b = await mkdns(s, "b");
    assert(a !== b, "different ports");
    await set(s, "a", "x 60 IN A 10.0.0.1");
    await set(s, "b", "x 60 IN A 10.0.0.2");
    assertEquals((await dig(a, "x", "A")).answers, ["x. 60 IN A 10.0.0.1"]);
    assertEquals((await dig(b, "x", "A")).answers, ["x. 60 IN A 10.0.0.2"]);
    assertOneLineError(
      await cli(["mkdns", "-d", s.url, `${s.path}/c`, `127.0.0.1:${a}`]),
      /address already in use/,
    );
    await cli(["scrub", "-d", s.url, `${s.path}/a`]);
    assertEquals((await dig(b, "x", "A")).answers, ["x. 60 IN A 10.0.0.2"], "b unaffected");
  });

  Deno.test("anchor.makeNameserver() returns a handle: set, unset, peek, scrub", async () => {
    await using s = await Server.start();
    await using client = await connect(s.url);
    const anchor = client.walk(`${s.path}/lib`);
    const ns = await anchor.makeNameserver("127.0.0.1");
    assertEquals(await ns.set("lib.example 60 A 10.9.8.7"), "lib.example.\t60\tIN\tA\t10.9.8.7");
    const state = await anchor.nameserver().peek();
    assertEquals(state.Records, { "lib.example.": ["lib.example.\t60\tIN\tA\t10.9.8.7"] });
    const port = Number(state.Address.split(":")[1]);
    assertEquals((await dig(port, "lib.example", "A")).answers, ["lib.example. 60 IN A 10.9.8.7"]);
    try {
      await ns.set("lib.example 60 A nope");
      throw new Error("a bad record was accepted");
    } catch (err) {
      assert(err instanceof CircuitError && err.code === "bad request", String(err));
    }
    try {
      await anchor.makeNameserver("127.0.0.1");
      throw new Error("a second element was made");
    } catch (err) {
      assert(err instanceof CircuitError, String(err));
    }
    assertEquals(await ns.unset("LIB.example"), 1);
    await ns.scrub();
    assertEquals(await anchor.peek(), null);
  });
}

Deno.test("a keyless server refuses mkdns on every interface or any non-loopback address", async () => {
  await using s = await Server.start();
  for (const [name, addr] of [["any4", "0.0.0.0:0"], ["any6", "[::]:0"], ["bare-any", "0.0.0.0"]]) {
    const r = await cli(["mkdns", "-d", s.url, `${s.path}/${name}`, addr]);
    assertOneLineError(
      r,
      /^Refusing to serve DNS on (0\.0\.0\.0|::): this server serves loopback only, so its nameservers do too; give a loopback address, or start the server on another address with --hmac KEYFILE$/,
    );
  }
  const ls = await cli(["ls", "-d", s.url, `${s.path}/...`]);
  assertEquals([ls.code, ls.stdout], [0, ""], "no element was made");
  const ok = await cli(["mkdns", "-d", s.url, `${s.path}/local`, "localhost:0"]);
  assertEquals([ok.code, ok.stderr], [0, ""], "localhost is loopback");
  const peek = JSON.parse((await cli(["peek", "-d", s.url, `${s.path}/local`])).stdout);
  assert(String(peek.Address).startsWith("127.0.0.1:"), `bound ${peek.Address}`);
});
