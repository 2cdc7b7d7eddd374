/**
 * The floor under an idle member, for section 4: a Deno process that does only what every
 * idle server must, with the libraries this project must use, and nothing of circuit's
 * own. It loads msgpackr and node:crypto, listens on TCP (nobody connects), and plays its
 * part in a ring of three at the membership protocol's default rate: every 500 ms it
 * sends a signed (keyed SHA-256), msgpack-encoded ping to the next member and arms a 200 ms timeout that
 * the ack clears; each ping it receives is checked and answered with a signed ack. An
 * idle circuit server in a 3-server cluster sends and receives the same packets (one
 * probe out and, on average, one probe in per interval).
 *
 * Usage: `deno run -A --config deno.json bench/_idle_floor.ts MY_UDP_PORT NEXT_UDP_PORT`;
 * prints `ready` once bound.
 *
 * @module
 */

import { Packr } from "msgpackr/pack";
import { hash, timingSafeEqual } from "node:crypto";

const [myPort, nextPort] = Deno.args.map(Number);
const KEY = new Uint8Array(64).fill(7);
const PING = 1, ACK = 2;
const packr = new Packr({ useRecords: false });

Deno.listen({ hostname: "127.0.0.1", port: 0 });
const udp = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: myPort });
const next: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: nextPort };

/** A keyed SHA-256: one one-shot hash call, less work than an HMAC's two. */
function mac(body: Uint8Array): Uint8Array {
  const msg = new Uint8Array(KEY.length + body.length);
  msg.set(KEY);
  msg.set(body, KEY.length);
  return hash("sha256", msg, "buffer") as unknown as Uint8Array;
}

function seal(kind: number, seq: number): Uint8Array {
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const body = packr.pack({ v: 1, ts: Date.now(), n: nonce, m: [{ k: kind, s: seq }] });
  const out = new Uint8Array(32 + body.length);
  out.set(mac(body));
  out.set(body, 32);
  return out;
}

function open(bytes: Uint8Array): { k: number; s: number } | null {
  if (!timingSafeEqual(mac(bytes.subarray(32)), bytes.subarray(0, 32))) return null;
  const p = packr.unpack(bytes.subarray(32)) as { m: { k: number; s: number }[] };
  return p.m[0];
}

let seq = 0;
let waiting: ReturnType<typeof setTimeout> | undefined;
(async () => {
  for (;;) {
    const [bytes, from] = await udp.receive();
    const m = open(bytes);
    if (m?.k === PING) await udp.send(seal(ACK, m.s), from);
    else if (m?.k === ACK && m.s === seq) clearTimeout(waiting);
  }
})();
setInterval(() => {
  seq++;
  waiting = setTimeout(() => {}, 200);
  void udp.send(seal(PING, seq), next);
}, 500);
console.log("ready");
