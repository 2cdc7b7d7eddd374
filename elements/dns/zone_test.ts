import fc from "fast-check";
import { CircuitError } from "../../net/errors.ts";
import { absoluteName, parseRecord, parseTtl, tokenize } from "./zone.ts";
import { formatRecord } from "./record.ts";
import { assertEquals } from "./_testing.ts";

function throwsBadRequest(fn: () => unknown, re: RegExp): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof CircuitError) || err.code !== "bad request") throw err;
    if (!re.test(err.message)) throw new Error(`message ${JSON.stringify(err.message)} !~ ${re}`);
    if (err.message.includes("\n")) throw new Error("the message is one line");
    return;
  }
  throw new Error(`expected a bad request matching ${re}`);
}

const fmt = (text: string) => formatRecord(parseRecord(text));

Deno.test("parseRecord() reads every supported type back in tab-separated presentation", () => {
  const cases: Array<[string, string]> = [
    ["miek.nl. 3600 IN MX 10 mx.miek.nl.", "miek.nl.\t3600\tIN\tMX\t10 mx.miek.nl."],
    ["foo 60 IN A 1.2.3.4", "foo.\t60\tIN\tA\t1.2.3.4"],
    ["v6 AAAA 2001:DB8:0:0:0:0:0:1", "v6.\t3600\tIN\tAAAA\t2001:db8::1"],
    ["www IN 300 CNAME web", "www.\t300\tIN\tCNAME\tweb."],
    ['t TXT "v=spf1 -all" two', 't.\t3600\tIN\tTXT\t"v=spf1 -all" "two"'],
    ['q TXT "say \\"hi\\"\\\\" "\\007"', 'q.\t3600\tIN\tTXT\t"say \\"hi\\"\\\\" "\\007"'],
    // Characters outside the BMP are whole code points (4 bytes of UTF-8), escaped.
    ['smile TXT "😀"', 'smile.\t3600\tIN\tTXT\t"\\240\\159\\152\\128"'],
    // Over 255 bytes, a string is split into 255-byte strings, as BIND and miekg/dns do.
    [
      `long TXT "${"x".repeat(300)}"`,
      `long.\t3600\tIN\tTXT\t"${"x".repeat(255)}" "${"x".repeat(45)}"`,
    ],
    ["_sip._tcp SRV 10 5 5060 sip", "_sip._tcp.\t3600\tIN\tSRV\t10 5 5060 sip."],
    ["example. NS ns1.example.", "example.\t3600\tIN\tNS\tns1.example."],
    ["4.3.2.1.in-addr.arpa. PTR host", "4.3.2.1.in-addr.arpa.\t3600\tIN\tPTR\thost."],
    ["@ 1h CH A 10.0.0.1", ".\t3600\tCH\tA\t10.0.0.1"],
    [
      "example. 86400 IN SOA ns1.example. admin.example. ( 2024010101 ; serial\n 2h 1h 2w 300 )",
      "example.\t86400\tIN\tSOA\tns1.example. admin.example. 2024010101 7200 3600 1209600 300",
    ],
    ["Mixed.Case. 5 in a 9.9.9.9 ; comment", "Mixed.Case.\t5\tIN\tA\t9.9.9.9"],
  ];
  for (const [input, want] of cases) assertEquals(fmt(input), want, input);
});

Deno.test("parseRecord() defaults the TTL to 3600 and the class to IN", () => {
  const rr = parseRecord("host A 10.1.2.3");
  assertEquals([rr.name, rr.ttl, rr.class, rr.type, rr.data], [
    "host.",
    3600,
    "IN",
    "A",
    "10.1.2.3",
  ]);
  assertEquals(parseRecord("host A 10.1.2.3", { defaultTtlSeconds: 5 }).ttl, 5);
});

Deno.test("parseRecord() names what does not parse, in one line", () => {
  const cases: Array<[string, RegExp]> = [
    ["", /it is empty/],
    ["foo", /no type/],
    ["foo 60 IN", /no type/],
    ["foo 60 IN BOGUS 1", /unknown or unsupported type "BOGUS"/],
    ["foo 60 IN A 1.2.3", /"1\.2\.3" is not an IPv4 address/],
    ["foo A 256.1.1.1", /not an IPv4 address/],
    ["foo A 1.2.3.4 5.6.7.8", /unexpected "5\.6\.7\.8" after the A data/],
    ["foo AAAA 1.2.3.4", /not an IPv6 address/],
    ["foo AAAA 1::2::3", /not an IPv6 address/],
    ["foo MX mx.", /MX needs PREFERENCE EXCHANGE/],
    ["foo MX 70000 mx.", /MX preference must be an integer from 0 to 65535/],
    ["foo SRV 1 2 3", /SRV needs/],
    ["foo TXT", /TXT needs at least one string/],
    ['foo TXT "open', /never closed/],
    [`big TXT ${`"${"x".repeat(255)}" `.repeat(257)}`, /over the 65535 a record can hold/],
    ["foo SOA a. b. 1 2 3 4 ( 5", /never closed/],
    ["a..b A 1.2.3.4", /empty label/],
    [`${"x".repeat(64)} A 1.2.3.4`, /longer than 63 bytes/],
    [`${"abcdefgh.".repeat(32)} A 1.2.3.4`, /longer than 255 bytes/],
    ["foo 99999999999 A 1.2.3.4", /TTL 99999999999 is over/],
  ];
  for (const [input, re] of cases) {
    throwsBadRequest(() => parseRecord(input), re);
    throwsBadRequest(() => parseRecord(input), /^Parsing record ".*" failed: /);
  }
});

Deno.test("absoluteName() completes relative names with the root", () => {
  assertEquals(["foo", "foo.", "@", ".", "a.B.c"].map(absoluteName), [
    "foo.",
    "foo.",
    ".",
    ".",
    "a.B.c.",
  ]);
});

Deno.test("parseTtl() reads seconds and BIND units, and rejects the rest", () => {
  assertEquals(["0", "60", "1h30m", "2d", "1W", "IN", "-1", "1x"].map(parseTtl), [
    0,
    60,
    5400,
    172800,
    604800,
    null,
    null,
    null,
  ]);
});

Deno.test("tokenize() keeps quoted strings whole and drops comments and parentheses", () => {
  assertEquals(tokenize('a ( "b c" ) ; d').map((t) => [t.text, t.quoted]), [["a", false], [
    "b c",
    true,
  ]]);
});

Deno.test("parseRecord() either parses or throws a bad request, for any input", () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 80 }), (text) => {
      try {
        const rr = parseRecord(text);
        // What parses prints back to something that parses to the same record.
        assertEquals(fmt(formatRecord(rr).replaceAll("\t", " ")), formatRecord(rr));
      } catch (err) {
        if (!(err instanceof CircuitError) || err.code !== "bad request") throw err;
      }
    }),
    { numRuns: 2000 },
  );
});

Deno.test("formatRecord() output parses back to the same record", () => {
  const txt = fc.uint8Array({ maxLength: 40 });
  fc.assert(
    fc.property(fc.array(txt, { minLength: 1, maxLength: 4 }), (strings) => {
      const rr = { name: "t.", ttl: 1, class: "IN" as const, type: "TXT" as const, data: strings };
      const text = formatRecord(rr);
      assertEquals(formatRecord(parseRecord(text.replaceAll("\t", " "))), text);
    }),
  );
});
