// Types for the parts of npm:dns-packet@5.6.1 that the DNS element uses. The package
// ships none, and @types/dns-packet pulls in all of @types/node.

/** One entry of the question section. */
export interface Question {
  /** Owner name, without the trailing dot (`.` for the root). */
  name: string;
  /** Type name (`A`, `MX`, …, or `UNKNOWN_<n>`). */
  type: string;
  /** Class name (`IN`, `CH`, …, or `UNKNOWN_<n>`). */
  class?: string;
}

/** A resource record, or the EDNS0 OPT pseudo-record. */
export interface Answer {
  /** Owner name. */
  name: string;
  /** Type name. */
  type: string;
  /** Class name (not for OPT). */
  class?: string;
  /** Seconds (not for OPT). */
  ttl?: number;
  /** Type-specific data (not for OPT). */
  data?: unknown;
  /** OPT: the sender's UDP payload size. */
  udpPayloadSize?: number;
  /** OPT: the upper 8 bits of the extended RCODE. */
  extendedRcode?: number;
  /** OPT: EDNS version. */
  ednsVersion?: number;
  /** OPT: flags (DO is the top bit). */
  flags?: number;
  /** OPT: options. */
  options?: unknown[];
}

/** A whole message. */
export interface Packet {
  /** Query id. */
  id?: number;
  /** QR bit. */
  type?: "query" | "response";
  /** Header flags below QR: opcode, AA, TC, RD, RA, Z, AD, CD and RCODE. */
  flags?: number;
  /** Opcode name (decoded only). */
  opcode?: string;
  /** RCODE name (decoded only). */
  rcode?: string;
  /** Question section. */
  questions?: Question[];
  /** Answer section. */
  answers?: Answer[];
  /** Authority section. */
  authorities?: Answer[];
  /** Additional section. */
  additionals?: Answer[];
}

/** Encode a message; throws on data it cannot encode. */
export function encode(packet: Packet): Uint8Array;
/** Decode a message; throws on malformed bytes. `buf` must be a node Buffer. */
export function decode(buf: Uint8Array): Required<Packet>;
/** The encoded size of a message. */
export function encodingLength(packet: Packet): number;
