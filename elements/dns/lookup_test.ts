import { CircuitError } from "../../net/errors.ts";
import { lookup, type Query } from "./lookup.ts";
import { RecordStore } from "./store.ts";
import { formatRecord } from "./record.ts";
import { parseRecord } from "./zone.ts";
import { assertEquals } from "./_testing.ts";

function storeOf(...rrs: string[]): RecordStore {
  const s = new RecordStore(1000);
  for (const rr of rrs) s.add(parseRecord(rr));
  return s;
}

function ask(store: RecordStore, name: string, type: string, turn = 0) {
  const q: Query = { name, type, class: "IN" };
  const r = lookup(store, q, { maxCnameChain: 8, turn });
  return {
    rcode: r.rcode,
    answers: r.answers.map(formatRecord),
    authorities: r.authorities.map(formatRecord),
    additionals: r.additionals.map(formatRecord),
  };
}

const ZONE = [
  "miek.nl. 3600 IN MX 10 mx.miek.nl.",
  "miek.nl. 3600 IN MX 20 mx2.miek.nl.",
  "mx.miek.nl. 60 IN A 1.2.3.4",
  "www.miek.nl. 60 IN CNAME web.miek.nl.",
  "web.miek.nl. 60 IN A 5.6.7.8",
  "web.miek.nl. 60 IN A 5.6.7.9",
  "a.b.c.example. 60 IN A 10.0.0.1",
  "example. 300 IN SOA ns.example. admin.example. 1 7200 3600 1209600 60",
  "out.example. 60 IN CNAME elsewhere.org.",
];

Deno.test("lookup() answers every record of the asked type and none of another", () => {
  const s = storeOf(...ZONE);
  const mx = ask(s, "miek.nl.", "MX");
  assertEquals(mx.rcode, "NOERROR");
  assertEquals(mx.answers, [
    "miek.nl.\t3600\tIN\tMX\t10 mx.miek.nl.",
    "miek.nl.\t3600\tIN\tMX\t20 mx2.miek.nl.",
  ]);
  assertEquals(
    mx.additionals,
    ["mx.miek.nl.\t60\tIN\tA\t1.2.3.4"],
    "target addresses as additionals",
  );
  const a = ask(s, "miek.nl.", "A");
  assertEquals([a.rcode, a.answers], ["NOERROR", []], "a known name without that type is NODATA");
});

Deno.test("lookup() matches names case-insensitively and answers with the asked case", () => {
  const s = storeOf(...ZONE);
  assertEquals(
    ask(s, "MIEK.NL.", "mx".toUpperCase()).answers[0],
    "MIEK.NL.\t3600\tIN\tMX\t10 mx.miek.nl.",
  );
});

Deno.test("lookup() says NXDOMAIN for unknown names, NOERROR for empty non-terminals", () => {
  const s = storeOf(...ZONE);
  assertEquals(ask(s, "nope.nl.", "A").rcode, "NXDOMAIN");
  assertEquals(ask(s, "b.c.example.", "A").rcode, "NOERROR");
  assertEquals(ask(s, "x.a.b.c.example.", "A").rcode, "NXDOMAIN");
});

Deno.test("lookup() puts the closest SOA in negative answers, its TTL capped by MINIMUM", () => {
  const s = storeOf(...ZONE);
  const soa = "example.\t60\tIN\tSOA\tns.example. admin.example. 1 7200 3600 1209600 60";
  assertEquals(ask(s, "gone.example.", "A").authorities, [soa]);
  assertEquals(ask(s, "a.b.c.example.", "MX").authorities, [soa]);
  assertEquals(ask(s, "nope.nl.", "A").authorities, [], "no SOA above: none");
});

Deno.test("lookup() follows CNAMEs it holds and stops at ones it does not", () => {
  const s = storeOf(...ZONE);
  const r = ask(s, "WWW.miek.nl.", "A");
  assertEquals(r.answers, [
    "WWW.miek.nl.\t60\tIN\tCNAME\tweb.miek.nl.",
    "web.miek.nl.\t60\tIN\tA\t5.6.7.8",
    "web.miek.nl.\t60\tIN\tA\t5.6.7.9",
  ]);
  assertEquals(ask(s, "www.miek.nl.", "CNAME").answers, [
    "www.miek.nl.\t60\tIN\tCNAME\tweb.miek.nl.",
  ]);
  const out = ask(s, "out.example.", "A");
  assertEquals([out.rcode, out.answers.length], ["NOERROR", 1]);
});

Deno.test("lookup() survives CNAME loops", () => {
  const s = storeOf("a. CNAME b.", "b. CNAME a.");
  assertEquals(ask(s, "a.", "A").answers.length, 2);
});

Deno.test("lookup() rotates records of one type (round robin)", () => {
  const s = storeOf(...ZONE);
  assertEquals(ask(s, "web.miek.nl.", "A", 1).answers.map((a) => a.split("\t")[4]), [
    "5.6.7.9",
    "5.6.7.8",
  ]);
});

Deno.test("lookup() answers ANY with every record of the name", () => {
  const s = storeOf(...ZONE, "miek.nl. TXT hello");
  assertEquals(ask(s, "miek.nl.", "ANY").answers.length, 3);
});

Deno.test("RecordStore refuses a CNAME beside other data and drops duplicates", () => {
  const s = storeOf(...ZONE);
  for (const rr of ["miek.nl. CNAME x.", "www.miek.nl. A 1.1.1.1"]) {
    try {
      s.add(parseRecord(rr));
      throw new Error(`${rr} was accepted`);
    } catch (err) {
      if (!(err instanceof CircuitError) || err.code !== "bad request") throw err;
    }
  }
  assertEquals(s.add(parseRecord("mx.miek.nl. 99 IN A 1.2.3.4")), false, "a duplicate replaces");
  assertEquals(s.toJSON()["mx.miek.nl."], ["mx.miek.nl.\t99\tIN\tA\t1.2.3.4"]);
});

Deno.test("RecordStore.remove() takes the name with or without the dot, any case", () => {
  const s = storeOf(...ZONE);
  assertEquals(s.remove("MIEK.nl"), 2);
  assertEquals(s.remove("mx.miek.nl."), 1);
  assertEquals(s.remove("never"), 0);
  assertEquals(ask(s, "mx.miek.nl.", "A").rcode, "NXDOMAIN");
  assertEquals(ask(s, "miek.nl.", "MX"), {
    rcode: "NOERROR",
    answers: [],
    authorities: [],
    additionals: [],
  });
  assertEquals(s.exists("c.example."), true);
  s.remove("a.b.c.example");
  assertEquals(s.exists("c.example."), false, "empty non-terminals go with their last name");
});

Deno.test("RecordStore refuses records past its bound", () => {
  const s = new RecordStore(2);
  s.add(parseRecord("a A 1.1.1.1"));
  s.add(parseRecord("b A 1.1.1.1"));
  try {
    s.add(parseRecord("c A 1.1.1.1"));
    throw new Error("accepted past the bound");
  } catch (err) {
    if (!(err instanceof CircuitError)) throw err;
  }
  assertEquals(s.size, 2);
});
