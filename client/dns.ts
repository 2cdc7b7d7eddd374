/**
 * Nameserver handles: DNS servers on any host whose records a program sets.
 *
 * @module
 */

import { DnsOp, type NameserverState, type SetArgs, type UnsetArgs } from "../net/wire/mod.ts";
import { ElementHandle } from "./handle.ts";
import type { CallOptions } from "./types.ts";

export type { NameserverState };

/**
 * A DNS element: an authoritative nameserver on UDP and TCP. It answers by name and
 * type (A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT), follows CNAMEs it holds, says
 * NXDOMAIN for names it does not hold, and compares names case-insensitively. Scrubbing
 * it stops serving and frees the port and the anchor.
 *
 * @example Serve an MX record
 * ```ts
 * import { connect } from "@circuit/client";
 * await using client = await connect(Deno.env.get("CIRCUIT_URL")!);
 * const ns = await client.walk(`${client.server}/dns`).makeNameserver("127.0.0.1:5353");
 * await ns.set("miek.nl. 3600 IN MX 10 mx.miek.nl.");
 * console.log((await ns.peek()).Records["miek.nl."]);
 * // ["miek.nl.\t3600\tIN\tMX\t10 mx.miek.nl."]  (dig @127.0.0.1 -p 5353 miek.nl MX)
 * await ns.unset("miek.nl");
 * await ns.scrub();
 * ```
 */
export class Nameserver extends ElementHandle<NameserverState> {
  /**
   * Add a resource record. Relative names are completed with the root (`foo` is `foo.`);
   * TTL (default 3600) and class (default IN) are optional. An identical record is
   * replaced (its TTL updated).
   *
   * @param rr a record in zone-file syntax, e.g. `foo 60 IN A 1.2.3.4`
   * @param options signal, timeout
   * @returns the record as stored, in presentation form
   * @throws {CircuitError} `bad request` naming what does not parse, or a CNAME beside
   *   other data; `not found` when there is no element
   */
  async set(rr: string, options: CallOptions = {}): Promise<string> {
    return await this.anchor.element(DnsOp.SET, { rr } satisfies SetArgs, options) as string;
  }

  /**
   * Remove every record of a name (nothing happens when it has none).
   *
   * @param name the name, with or without the trailing dot, any case
   * @param options signal, timeout
   * @returns how many records were removed
   * @throws {CircuitError} `not found` when there is no element
   */
  async unset(name: string, options: CallOptions = {}): Promise<number> {
    return await this.anchor.element(DnsOp.UNSET, { name } satisfies UnsetArgs, options) as number;
  }
}
