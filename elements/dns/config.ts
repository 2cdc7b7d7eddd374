/**
 * Limits and defaults of the DNS element, in one place.
 *
 * @module
 */

/** What a DNS element may hold and how its server behaves. */
export interface DnsConfig {
  /** TTL of a record written without one, in seconds. @default {3600} */
  defaultTtlSeconds: number;
  /**
   * Records one element holds; a `set` past this is refused with `bad request`.
   * @default {100000}
   */
  maxRecords: number;
  /**
   * The largest UDP reply sent, in bytes, whatever the client offers; also the size this
   * server advertises in its OPT record. A client without EDNS0 gets 512.
   * @default {4096}
   */
  maxUdpPayloadBytes: number;
  /** TCP connections served at once; the next one is closed at once. @default {256} */
  maxTcpConnections: number;
  /** A TCP connection idle this long is closed, in ms. @default {10000} */
  tcpIdleMs: number;
  /** CNAME links followed within the element for one answer. @default {8} */
  maxCnameChain: number;
  /** Tries at finding a free port that UDP and TCP can share. @default {20} */
  bindAttempts: number;
}

/** The defaults. */
export const DEFAULT_DNS_CONFIG: Readonly<DnsConfig> = Object.freeze({
  defaultTtlSeconds: 3600,
  maxRecords: 100_000,
  maxUdpPayloadBytes: 4096,
  maxTcpConnections: 256,
  tcpIdleMs: 10_000,
  maxCnameChain: 8,
  bindAttempts: 20,
});

/** A reply to a client without EDNS0 fits in this many bytes over UDP (RFC 1035). */
export const CLASSIC_UDP_PAYLOAD_BYTES = 512;
