/**
 * Server ids and circuit URLs: `circuit://HOST:PORT/PID/Q<16 hex>`.
 *
 * @module
 */

import { CircuitError } from "./errors.ts";

/** A parsed circuit URL. */
export interface CircuitUrl {
  /** Host name or IP address (IPv6 without brackets). */
  host: string;
  /** TCP port. */
  port: number;
  /** The daemon's process id. */
  pid: number;
  /** The incarnation id: 16 lowercase hex digits, also the server id after `X`. */
  id: string;
}

const URL_RE =
  /^circuit:\/\/(\[[0-9a-fA-F:.]+\]|[^\/:\[\]]+):(\d{1,5})\/(\d+)\/Q([0-9a-f]{16})\/?$/;
const SERVER_RE = /^X[0-9a-f]{16}$/;

/**
 * Parse a circuit URL.
 *
 * @param text the URL, surrounding white space ignored
 * @returns its parts
 * @throws {CircuitError} `bad request` when it is not a circuit URL
 */
export function parseUrl(text: string): CircuitUrl {
  const m = URL_RE.exec(text.trim());
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) {
    throw new CircuitError(
      "bad request",
      `Parsing circuit URL failed: expected circuit://HOST:PORT/PID/Q<16 hex digits>, got "${text.trim()}"`,
    );
  }
  const host = m[1].startsWith("[") ? m[1].slice(1, -1) : m[1];
  return { host, port, pid: Number(m[3]), id: m[4] };
}

/**
 * Format a circuit URL.
 *
 * @param url its parts
 * @returns `circuit://HOST:PORT/PID/Q<id>`
 */
export function formatUrl(url: CircuitUrl): string {
  const host = url.host.includes(":") ? `[${url.host}]` : url.host;
  return `circuit://${host}:${url.port}/${url.pid}/Q${url.id}`;
}

/**
 * Make a fresh incarnation id: 64 random bits as 16 lowercase hex digits.
 *
 * @returns the id
 */
export function newServerId(): string {
  const b = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * Whether a path component names a server (`X` + 16 lowercase hex digits).
 *
 * @param name the component
 * @returns true for a server name
 */
export function isServerName(name: string): boolean {
  return SERVER_RE.test(name);
}

/**
 * Whether an address is a loopback IP address, read as an address, never as a name: a
 * name such as `127.evil.test` may resolve anywhere.
 *
 * @param host an IP address (IPv6 with or without brackets)
 * @returns true for 127.0.0.0/8 in dotted quad, ::1 (any spelling) and IPv4-mapped
 *   ::ffff:127.x.y.z
 */
export function isLoopbackAddress(host: string): boolean {
  const h = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  const v4 = /^(?:::ffff:)?(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/i.exec(h);
  if (v4) return v4[1] === "127" && v4.slice(2).every((o) => Number(o) <= 255);
  if (!/^[0-9a-f:]+$/i.test(h) || !h.includes("::") && h.split(":").length !== 8) return false;
  // ::1 spelled in full or in part: every group zero but a last group of 1.
  const [head, tail = ""] = h.split("::");
  const groups = [...head.split(":"), ...(h.includes("::") ? tail.split(":") : [])]
    .filter((g) => g !== "");
  if (groups.length === 0 || groups.some((g) => g.length > 4)) return false;
  const last = groups.pop()!;
  return Number.parseInt(last, 16) === 1 && groups.every((g) => Number.parseInt(g, 16) === 0);
}

/**
 * Whether a host is loopback: a loopback IP address ({@linkcode isLoopbackAddress}) or
 * the name `localhost`, which circuit itself takes as 127.0.0.1 wherever it binds.
 *
 * @param host an IP address or name
 * @returns true for 127.0.0.0/8, ::1 and localhost; false for any other name
 */
export function isLoopback(host: string): boolean {
  return host === "localhost" || isLoopbackAddress(host);
}
