/**
 * The DNS kind on the wire.
 *
 * - `set`: args {@linkcode SetArgs} → the record as stored, in presentation form.
 * - `unset`: args {@linkcode UnsetArgs} → how many records were removed.
 *
 * @module
 */

/** The kind name `make` and `ls -l` use for nameservers. */
export const DNS_KIND = "dns";

/** A nameserver's own operations. */
export const DnsOp = {
  /** Add a resource record: args {@linkcode SetArgs}. */
  SET: "set",
  /** Remove every record of a name: args {@linkcode UnsetArgs}. */
  UNSET: "unset",
} as const;

/** A nameserver operation's name. */
export type DnsOpName = typeof DnsOp[keyof typeof DnsOp];

/** What `make` takes for a nameserver. */
export interface NameserverSpec {
  /**
   * `HOST:PORT`, `:PORT`, `HOST` or absent; a missing port means any, a missing host
   * every interface.
   */
  addr?: string;
}

/** What `set` takes. */
export interface SetArgs {
  /** A record in zone-file syntax, e.g. `foo 60 IN A 1.2.3.4`. */
  rr: string;
}

/** What `unset` takes. */
export interface UnsetArgs {
  /** The name, with or without the trailing dot, any case. */
  name: string;
}

/** A nameserver's state, as `peek` returns it. */
export interface NameserverState {
  /** Where to send queries, `HOST:PORT`, UDP and TCP. */
  Address: string;
  /**
   * Records by lower-case absolute name, names sorted, each in tab-separated
   * presentation form: `"miek.nl.\t3600\tIN\tMX\t10 mx.miek.nl."`.
   */
  Records: Record<string, string[]>;
}
