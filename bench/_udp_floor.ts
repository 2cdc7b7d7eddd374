/**
 * The UDP floor for the DNS section: a responder on the same socket API as the DNS
 * element (`Deno.listenDatagram`) that parses nothing and answers every query with one A
 * record (the query's header and question, then a fixed answer). What it reaches is as
 * fast as this runtime answers UDP queries on one thread; the element can only be slower.
 *
 * `deno run -A bench/_udp_floor.ts` prints the port on its first line, then serves until
 * killed.
 *
 * @module
 */

/** The fixed answer: name pointer to the question, A IN, TTL 60, 10.0.0.1. */
const ANSWER = new Uint8Array([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]);

const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
console.log((sock.addr as Deno.NetAddr).port);
const buf = new Uint8Array(65536);
for (;;) {
  const [query, from] = await sock.receive(buf);
  if (query.length < 12 || query[2] & 0x80) continue;
  // The question ends after its name's zero label, its type and its class; anything after
  // it (an OPT) is left out.
  let end = 12;
  while (end < query.length && query[end] !== 0) end += query[end] + 1;
  end += 5;
  if (end > query.length) continue;
  const reply = new Uint8Array(end + ANSWER.length);
  reply.set(query.subarray(0, end));
  reply.set(ANSWER, end);
  reply[2] = 0x84 | (query[2] & 0x01); // QR, AA, RD echoed
  reply[3] = 0;
  reply[6] = 0;
  reply[7] = 1; // ANCOUNT 1
  reply.fill(0, 8, 12); // NSCOUNT, ARCOUNT 0
  sock.send(reply, from).catch(() => {});
}
