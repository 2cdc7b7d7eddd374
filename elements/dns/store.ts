/**
 * The records one DNS element holds, by case-insensitive name. Adding keeps the data a
 * resolver can trust: no duplicate records, and a name with a CNAME holds nothing else
 * (RFC 1034 §3.6.2).
 *
 * @module
 */

import { CircuitError } from "../../net/errors.ts";
import {
  formatRdata,
  formatRecord,
  nameKey,
  type RecordType,
  type ResourceRecord,
} from "./record.ts";

/**
 * The parent of a name.
 *
 * @param key an absolute name, e.g. `a.b.`
 * @returns its parent (`b.`), or null for the root
 */
export function parentName(key: string): string | null {
  if (key === ".") return null;
  const dot = key.indexOf(".");
  return dot === key.length - 1 ? "." : key.slice(dot + 1);
}

/** Records by name. */
export class RecordStore {
  #byName = new Map<string, ResourceRecord[]>();
  /** How many names with records are at or below each name (for empty non-terminals). */
  #below = new Map<string, number>();
  #size = 0;
  #version = 0;
  #maxRecords: number;

  /** @param maxRecords the most records held */
  constructor(maxRecords: number) {
    this.#maxRecords = maxRecords;
  }

  /** Records held. */
  get size(): number {
    return this.#size;
  }

  /** Changes with every add or remove (replies built before a change are stale). */
  get version(): number {
    return this.#version;
  }

  /**
   * Add a record; an identical one (same name, class, type and data) is replaced, so its
   * TTL is updated.
   *
   * @param rr the record
   * @returns true when it was new
   * @throws {CircuitError} `bad request` when it would put a CNAME beside other data, or
   *   past the record limit
   */
  add(rr: ResourceRecord): boolean {
    const key = nameKey(rr.name);
    const list = this.#byName.get(key) ?? [];
    const same = list.findIndex((r) =>
      r.class === rr.class && r.type === rr.type && formatRdata(r) === formatRdata(rr)
    );
    if (same >= 0) {
      list[same] = rr;
      this.#version++; // the TTL may have changed
      return false;
    }
    if (rr.type === "CNAME" && list.length > 0) {
      throw new CircuitError(
        "bad request",
        `Setting a CNAME at "${rr.name}" failed: the name already has records (unset it first)`,
      );
    }
    if (rr.type !== "CNAME" && list.some((r) => r.type === "CNAME")) {
      throw new CircuitError(
        "bad request",
        `Setting ${rr.type} at "${rr.name}" failed: the name has a CNAME and can hold nothing else`,
      );
    }
    if (this.#size >= this.#maxRecords) {
      throw new CircuitError(
        "bad request",
        `Setting a record failed: this element already holds the most records, ${this.#maxRecords}`,
      );
    }
    list.push(rr);
    this.#size++;
    this.#version++;
    if (list.length === 1) {
      this.#byName.set(key, list);
      this.#count(key, 1);
    }
    return true;
  }

  /**
   * Remove every record of a name.
   *
   * @param name the name, with or without the trailing dot, any case
   * @returns how many were removed
   */
  remove(name: string): number {
    const key = nameKey(name === "" || name.endsWith(".") ? name || "." : name + ".");
    const list = this.#byName.get(key);
    if (!list) return 0;
    this.#byName.delete(key);
    this.#size -= list.length;
    this.#version++;
    this.#count(key, -1);
    return list.length;
  }

  /**
   * Every record of a name.
   *
   * @param key the lower-cased absolute name
   * @returns the records, in the order they were set (empty when none)
   */
  records(key: string): readonly ResourceRecord[] {
    return this.#byName.get(key) ?? [];
  }

  /**
   * The records of a name of one type.
   *
   * @param key the lower-cased absolute name
   * @param type the type
   * @returns the records
   */
  recordsOf(key: string, type: RecordType): ResourceRecord[] {
    return this.records(key).filter((r) => r.type === type);
  }

  /**
   * Whether a name exists: it has records, or a name below it does (RFC 8020).
   *
   * @param key the lower-cased absolute name
   * @returns whether it exists
   */
  exists(key: string): boolean {
    return (this.#below.get(key) ?? 0) > 0;
  }

  /**
   * Every record in presentation form, by name, names sorted.
   *
   * @returns `{"name.": ["name.\t60\tIN\tA\t1.2.3.4", …]}`
   */
  toJSON(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const key of [...this.#byName.keys()].sort()) {
      out[key] = this.#byName.get(key)!.map(formatRecord);
    }
    return out;
  }

  #count(key: string, delta: number): void {
    for (let k: string | null = key; k !== null; k = parentName(k)) {
      const n = (this.#below.get(k) ?? 0) + delta;
      if (n > 0) this.#below.set(k, n);
      else this.#below.delete(k);
    }
  }
}
