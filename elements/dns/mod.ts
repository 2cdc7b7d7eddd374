/**
 * DNS elements: authoritative nameservers on UDP and TCP, their records set and unset
 * in zone-file syntax.
 *
 * ```ts
 * import { formatRecord, parseRecord } from "./mod.ts";
 * console.log(formatRecord(parseRecord("foo 60 IN A 1.2.3.4"))); // "foo.\t60\tIN\tA\t1.2.3.4"
 * ```
 *
 * @module
 */

export { DnsElement, dnsKind, type DnsPeek, type DnsSpec, parseDnsAddr } from "./dns.ts";
export { DEFAULT_DNS_CONFIG, type DnsConfig } from "./config.ts";
export { parseRecord } from "./zone.ts";
export { formatRecord, type RecordType, type ResourceRecord } from "./record.ts";
export { respond } from "./message.ts";
export { RecordStore } from "./store.ts";
