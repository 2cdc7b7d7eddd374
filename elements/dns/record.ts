/**
 * Resource records as the DNS element holds them, and their presentation: the
 * tab-separated text `peek` shows (`name.\tTTL\tCLASS\tTYPE\tRDATA`).
 *
 * @module
 */

/** Record types the element stores. */
export const RECORD_TYPES = ["A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT"] as const;

/** A record type the element stores. */
export type RecordType = typeof RECORD_TYPES[number];

/** Record classes accepted. */
export const RECORD_CLASSES = ["IN", "CH", "HS", "CS"] as const;

/** A record class. */
export type RecordClass = typeof RECORD_CLASSES[number];

/** MX data. */
export interface MxData {
  /** Lower is preferred. */
  preference: number;
  /** The mail exchanger's name. */
  exchange: string;
}

/** SRV data (RFC 2782). */
export interface SrvData {
  /** Lower is tried first. */
  priority: number;
  /** Relative weight among equal priorities. */
  weight: number;
  /** Service port. */
  port: number;
  /** The host's name (`.`: no service). */
  target: string;
}

/** SOA data. */
export interface SoaData {
  /** Primary nameserver. */
  mname: string;
  /** Responsible mailbox, as a name. */
  rname: string;
  /** Zone serial. */
  serial: number;
  /** Seconds. */
  refresh: number;
  /** Seconds. */
  retry: number;
  /** Seconds. */
  expire: number;
  /** Negative-caching TTL, seconds. */
  minimum: number;
}

interface Base<T extends RecordType, D> {
  /** Owner name, absolute, as written (case kept). */
  name: string;
  /** Seconds. */
  ttl: number;
  /** Class. */
  class: RecordClass;
  /** Type. */
  type: T;
  /** Type-specific data. */
  data: D;
}

/** A parsed resource record. */
export type ResourceRecord =
  | Base<"A" | "AAAA" | "CNAME" | "NS" | "PTR", string>
  | Base<"MX", MxData>
  | Base<"SRV", SrvData>
  | Base<"SOA", SoaData>
  | Base<"TXT", Uint8Array[]>;

/**
 * Lower-case ASCII letters only: DNS names compare case-insensitively in ASCII
 * (RFC 4343).
 *
 * @param name a name
 * @returns the lookup key
 */
export function nameKey(name: string): string {
  return name.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/**
 * A character-string in presentation form: quoted, with `"` and `\` escaped and bytes
 * outside printable ASCII as `\DDD`.
 *
 * @param bytes the string's bytes
 * @returns the quoted text
 */
export function quoteString(bytes: Uint8Array): string {
  let s = '"';
  for (const b of bytes) {
    if (b === 0x22 || b === 0x5c) s += "\\" + String.fromCharCode(b);
    else if (b >= 0x20 && b < 0x7f) s += String.fromCharCode(b);
    else s += "\\" + String(b).padStart(3, "0");
  }
  return s + '"';
}

/**
 * The record's data in presentation form, e.g. `10 mx.miek.nl.`.
 *
 * @param rr the record
 * @returns the text
 */
export function formatRdata(rr: ResourceRecord): string {
  switch (rr.type) {
    case "MX":
      return `${rr.data.preference} ${rr.data.exchange}`;
    case "SRV":
      return `${rr.data.priority} ${rr.data.weight} ${rr.data.port} ${rr.data.target}`;
    case "SOA": {
      const d = rr.data;
      return `${d.mname} ${d.rname} ${d.serial} ${d.refresh} ${d.retry} ${d.expire} ${d.minimum}`;
    }
    case "TXT":
      return rr.data.map(quoteString).join(" ");
    default:
      return rr.data;
  }
}

/**
 * The record in the tab-separated presentation `peek` shows.
 *
 * @param rr the record
 * @returns `name.\tTTL\tCLASS\tTYPE\tRDATA`
 */
export function formatRecord(rr: ResourceRecord): string {
  return `${rr.name}\t${rr.ttl}\t${rr.class}\t${rr.type}\t${formatRdata(rr)}`;
}
