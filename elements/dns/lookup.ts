/**
 * Answering one question from a {@linkcode RecordStore}: a plain function, no I/O.
 *
 * - the records of the asked type, rotated on every answer (round robin);
 * - CNAME chains followed within the store;
 * - NXDOMAIN for a name that does not exist, NOERROR with no answer for one that exists
 *   without that type, with the closest SOA in the authority section when there is one;
 * - ANY: every record of the name;
 * - A and AAAA of MX, SRV and NS targets in the additional section.
 *
 * @module
 */

import type { RecordStore } from "./store.ts";
import { parentName } from "./store.ts";
import { nameKey, type RecordType, type ResourceRecord } from "./record.ts";

/** One question, as decoded. */
export interface Query {
  /** The name asked, absolute (`foo.`), case as sent. */
  name: string;
  /** The type asked (`A`, `ANY`, `UNKNOWN_99`, …). */
  type: string;
  /** The class asked (`IN`, `ANY`, …). */
  class: string;
}

/** The sections of an answer. */
export interface LookupResult {
  /** NXDOMAIN only when the first name asked does not exist. */
  rcode: "NOERROR" | "NXDOMAIN";
  /** Answers: owner names of the first link carry the asked name's case. */
  answers: ResourceRecord[];
  /** The closest SOA, for negative answers. */
  authorities: ResourceRecord[];
  /** Addresses of targets named in the answers. */
  additionals: ResourceRecord[];
  /** How many answer orders round robin cycles through (1: the answer has one order). */
  period: number;
}

/** Options of {@linkcode lookup}. */
export interface LookupOptions {
  /** CNAME links to follow. */
  maxCnameChain: number;
  /** Rotation offset for round robin (e.g. a counter). */
  turn: number;
}

function rotate<T>(list: T[], turn: number): T[] {
  if (list.length < 2) return list;
  const k = turn % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

function classMatches(rr: ResourceRecord, qclass: string): boolean {
  return qclass === "ANY" || rr.class === qclass;
}

/**
 * Answer one question.
 *
 * @param store the records
 * @param q the question
 * @param options chain bound and rotation
 * @returns the sections and the rcode
 */
export function lookup(store: RecordStore, q: Query, options: LookupOptions): LookupResult {
  const answers: ResourceRecord[] = [];
  const seen = new Set<string>();
  let owner = q.name;
  let rcode: LookupResult["rcode"] = "NOERROR";
  let negative = false;
  let period = 1;
  for (let hop = 0; hop <= options.maxCnameChain; hop++) {
    const key = nameKey(owner);
    if (seen.has(key)) break; // a CNAME loop: answer what we have
    seen.add(key);
    const all = store.records(key).filter((r) => classMatches(r, q.class));
    const withOwner = (rrs: ResourceRecord[]) => rrs.map((r) => ({ ...r, name: owner }));
    const wanted = q.type === "ANY" ? all : all.filter((r) => r.type === q.type);
    if (wanted.length > 0) {
      period = wanted.length;
      answers.push(...withOwner(rotate(wanted, options.turn)));
      break;
    }
    const cname = all.find((r) => r.type === "CNAME");
    if (cname) {
      answers.push(...withOwner([cname]));
      owner = cname.data as string;
      continue;
    }
    // Outside the store after a CNAME: the resolver follows the chain itself.
    if (hop > 0 && !store.exists(key)) break;
    negative = true;
    if (hop === 0 && !store.exists(key)) rcode = "NXDOMAIN";
    break;
  }
  const soa = negative ? closestSoa(store, nameKey(owner)) : null;
  return {
    rcode,
    answers,
    authorities: soa ? [soa] : [],
    additionals: q.type === "ANY" ? [] : targetAddresses(store, answers, q.class),
    period,
  };
}

/** The SOA at the name or its closest ancestor, its TTL capped by its MINIMUM (RFC 2308). */
function closestSoa(store: RecordStore, key: string): ResourceRecord | null {
  for (let k: string | null = key; k !== null; k = parentName(k)) {
    const soa = store.recordsOf(k, "SOA")[0];
    if (soa?.type === "SOA") return { ...soa, ttl: Math.min(soa.ttl, soa.data.minimum) };
  }
  return null;
}

function targetOf(rr: ResourceRecord): string | null {
  switch (rr.type) {
    case "MX":
      return rr.data.exchange;
    case "SRV":
      return rr.data.target;
    case "NS":
      return rr.data;
    default:
      return null;
  }
}

function targetAddresses(
  store: RecordStore,
  answers: ResourceRecord[],
  qclass: string,
): ResourceRecord[] {
  const out: ResourceRecord[] = [];
  const done = new Set<string>();
  for (const rr of answers) {
    const target = targetOf(rr);
    if (!target || target === ".") continue;
    const key = nameKey(target);
    if (done.has(key)) continue;
    done.add(key);
    for (const type of ["A", "AAAA"] as RecordType[]) {
      out.push(...store.recordsOf(key, type).filter((r) => classMatches(r, qclass)));
    }
  }
  return out;
}
