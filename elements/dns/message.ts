/**
 * One DNS message in, one reply out: decoding, checking, EDNS0 and truncation. Bytes in,
 * bytes out, no sockets, so any input can be fuzzed here.
 *
 * - Fewer than 12 bytes, or a response (QR set): dropped (null).
 * - Undecodable: FORMERR with the query's id and no question.
 * - An opcode other than QUERY: NOTIMP. Not exactly one question, or more than one OPT:
 *   FORMERR. An unknown class, AXFR or IXFR: REFUSED. EDNS version above 0: BADVERS.
 * - Every reply is authoritative (AA) and echoes RD; recursion is not offered.
 * - EDNS0 (RFC 6891): a query with OPT gets an OPT back, and a UDP reply up to the size the
 *   client offered (at least 512, at most the configured maximum); without OPT, 512.
 * - Too big: the additional section goes first; if it still does not fit, the reply is
 *   the question alone with TC set, and the client retries over TCP.
 *
 * @module
 */

import { Buffer } from "node:buffer";
// @ts-types="./_dns_packet.d.ts"
import * as packet from "dns-packet";
import type { Answer, Packet, Question } from "./_dns_packet.d.ts";
import { CLASSIC_UDP_PAYLOAD_BYTES } from "./config.ts";
import { lookup } from "./lookup.ts";
import type { RecordStore } from "./store.ts";
import type { ResourceRecord } from "./record.ts";
import type { Rotation } from "./cache.ts";

/** RCODE values (RFC 1035, 2671). */
export const RCODE = Object.freeze({
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  BADVERS: 16,
});

const FLAG_QR = 1 << 15;
const FLAG_AA = 1 << 10;
const FLAG_TC = 1 << 9;
const FLAG_RD = 1 << 8;
const OPCODE_MASK = 0xf << 11;
/** The largest DNS message, the TCP length prefix's limit. */
export const MAX_MESSAGE_BYTES = 65535;

/** How the reply will travel and what the server offers. */
export interface RespondOptions {
  /** UDP replies are bounded by the client's payload size; TCP by 65535. */
  transport: "udp" | "tcp";
  /** The largest UDP reply, in bytes; also advertised in our OPT. */
  maxUdpPayloadBytes: number;
  /** CNAME links followed. */
  maxCnameChain: number;
  /** Round-robin turn. */
  turn: number;
  /** When given, set to how many answer orders round robin cycles through. */
  rotation?: Rotation;
}

/**
 * A header-only reply: used when the query cannot be decoded.
 *
 * @param query the query's bytes (at least 12)
 * @param rcode the RCODE
 * @returns 12 bytes
 */
export function headerOnly(query: Uint8Array, rcode: number): Uint8Array {
  const out = new Uint8Array(12);
  out[0] = query[0];
  out[1] = query[1];
  const flags = FLAG_QR | (((query[2] << 8) | query[3]) & (OPCODE_MASK | FLAG_RD)) | rcode;
  out[2] = flags >> 8;
  out[3] = flags & 0xff;
  return out;
}

function asBuffer(bytes: Uint8Array): Uint8Array {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

const ENC = new TextEncoder();

/** Whether dns-packet can encode a decoded name back as it came (labels of 1–63 bytes). */
function encodable(name: string): boolean {
  if (name === ".") return true;
  const labels = name.split(".");
  return labels.every((l) => {
    const n = ENC.encode(l).length;
    return n > 0 && n <= 63;
  }) && ENC.encode(name).length <= 253;
}

/**
 * A record as dns-packet encodes it.
 *
 * @param rr the record
 * @returns the answer entry
 */
export function toAnswer(rr: ResourceRecord): Answer {
  const data = rr.type === "TXT" ? rr.data.map(asBuffer) : rr.data;
  return { name: rr.name, type: rr.type, class: rr.class, ttl: rr.ttl, data };
}

/**
 * The reply to one message.
 *
 * @param bytes the message as received
 * @param store the records
 * @param options transport and limits
 * @returns the reply's bytes, or null to send nothing
 */
export function respond(
  bytes: Uint8Array,
  store: RecordStore,
  options: RespondOptions,
): Uint8Array | null {
  if (bytes.length < 12) return null;
  if (bytes[2] & 0x80) return null; // a response: never answer one (no loops)
  let query: Required<Packet>;
  try {
    query = packet.decode(asBuffer(bytes));
  } catch {
    return headerOnly(bytes, RCODE.FORMERR);
  }
  try {
    return build(query, bytes, store, options);
  } catch {
    // Data dns-packet decoded but cannot encode back (odd names or classes).
    return headerOnly(bytes, RCODE.FORMERR);
  }
}

function build(
  query: Required<Packet>,
  bytes: Uint8Array,
  store: RecordStore,
  options: RespondOptions,
): Uint8Array | null {
  const opcode = (query.flags & OPCODE_MASK) >> 11;
  if (opcode !== 0) return headerOnly(bytes, RCODE.NOTIMP);
  const opts = query.additionals.filter((a) => a.type === "OPT");
  if (query.questions.length !== 1 || opts.length > 1) return headerOnly(bytes, RCODE.FORMERR);
  const q = query.questions[0];
  if (!encodable(q.name)) return headerOnly(bytes, RCODE.FORMERR);
  const opt = opts[0];
  const reply: Packet & Required<Pick<Packet, "answers" | "authorities" | "additionals">> = {
    id: query.id,
    type: "response",
    flags: FLAG_AA | (query.flags & FLAG_RD),
    questions: [q],
    answers: [],
    authorities: [],
    additionals: [],
  };
  const ourOpt: Answer | null = opt
    ? { name: ".", type: "OPT", udpPayloadSize: options.maxUdpPayloadBytes, flags: 0 }
    : null;
  if (opt && (opt.ednsVersion ?? 0) > 0) {
    ourOpt!.extendedRcode = RCODE.BADVERS >> 4;
    reply.additionals.push(ourOpt!);
    return packet.encode(reply);
  }
  const rcode = answerInto(reply, q, store, options);
  reply.flags! |= rcode;
  if (ourOpt) reply.additionals.push(ourOpt);
  const limit = options.transport === "tcp" ? MAX_MESSAGE_BYTES : Math.min(
    options.maxUdpPayloadBytes,
    Math.max(CLASSIC_UDP_PAYLOAD_BYTES, opt?.udpPayloadSize ?? CLASSIC_UDP_PAYLOAD_BYTES),
  );
  return fit(reply, ourOpt, limit);
}

/** Fill the answer sections; returns the RCODE. */
function answerInto(
  reply: Required<Pick<Packet, "answers" | "authorities" | "additionals">>,
  q: Question,
  store: RecordStore,
  options: RespondOptions,
): number {
  const qclass = q.class ?? "IN";
  if (qclass.startsWith("UNKNOWN_")) return RCODE.REFUSED;
  if (q.type === "AXFR" || q.type === "IXFR") return RCODE.REFUSED;
  const name = q.name === "." ? "." : q.name + ".";
  const r = lookup(store, { name, type: q.type, class: qclass }, options);
  if (options.rotation) options.rotation.period = r.period;
  reply.answers.push(...r.answers.map(toAnswer));
  reply.authorities.push(...r.authorities.map(toAnswer));
  reply.additionals.push(...r.additionals.map(toAnswer));
  return RCODE[r.rcode];
}

/** Encode within `limit` bytes: drop additionals, then everything but the question + TC. */
function fit(
  reply: Packet & Required<Pick<Packet, "answers" | "authorities" | "additionals">>,
  opt: Answer | null,
  limit: number,
): Uint8Array {
  if (packet.encodingLength(reply) <= limit) return packet.encode(reply);
  reply.additionals = opt ? [opt] : [];
  if (packet.encodingLength(reply) <= limit) return packet.encode(reply);
  reply.answers = [];
  reply.authorities = [];
  reply.flags! |= FLAG_TC;
  return packet.encode(reply);
}
