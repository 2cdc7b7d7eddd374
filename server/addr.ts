/**
 * Choosing the address a server binds and the host its URL advertises. The decisions
 * are plain functions; the interface list and routing table are read at the edges.
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";
import { isLoopback, isLoopbackAddress } from "../net/url.ts";

/** Where to listen and what to advertise. */
export interface BindPlan {
  /** Address to bind (may be a wildcard). */
  hostname: string;
  /** Port to bind; 0 picks a free one. */
  port: number;
  /** Host put in the URL: never a wildcard. */
  advertise: string;
}

/** A minimal view of a network interface. */
export interface Iface {
  /** Interface name, e.g. `eth0`. */
  name: string;
  /** Address family. */
  family: "IPv4" | "IPv6";
  /** The address. */
  address: string;
}

/** Inputs of {@linkcode planBind}. */
export interface BindInput {
  /** `-a HOST:PORT`. */
  addr?: string;
  /** `--if IFACE`. */
  iface?: string;
  /** Whether a key is set. */
  keyed: boolean;
  /** `--insecure`: allow a non-loopback bind without a key. */
  insecure: boolean;
  /** The host's interfaces. */
  interfaces: Iface[];
  /** The default-route interface's name, if any. */
  defaultIface?: string;
}

function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "";
}

/**
 * Split `HOST:PORT` (IPv6 in brackets).
 *
 * @param text the address
 * @returns host and port
 * @throws {CircuitError} `bad request` when the port is missing or invalid
 */
export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]*)):(\d+)$/.exec(text.trim());
  if (!m) {
    throw new CircuitError(
      "bad request",
      `Parsing address failed: expected HOST:PORT, got "${text}"`,
    );
  }
  const port = Number(m[3]);
  if (port > 65535) {
    throw new CircuitError("bad request", `Parsing address failed: port ${port} is out of range`);
  }
  return { host: m[1] ?? m[2], port };
}

function ifaceV4(ifaces: Iface[], name: string): string | undefined {
  return ifaces.find((i) => i.name === name && i.family === "IPv4")?.address;
}

/**
 * Decide where to bind and what URL host to advertise.
 *
 * @param input flags, key presence and the host's interfaces
 * @returns the plan
 * @throws {CircuitError} `bad request` for an unknown interface, a bad address, or a
 *   bind without a key and without `--insecure` to anything but a loopback IP address or
 *   `localhost` (taken as 127.0.0.1; other names are refused, whatever they resolve to)
 */
export function planBind(input: BindInput): BindPlan {
  let plan: BindPlan;
  if (input.iface) {
    const a = ifaceV4(input.interfaces, input.iface);
    if (!a) {
      throw new CircuitError(
        "bad request",
        `Binding interface "${input.iface}" failed: it has no IPv4 address`,
      );
    }
    plan = { hostname: a, port: input.addr ? parseHostPort(input.addr).port : 0, advertise: a };
  } else if (input.addr) {
    const { host, port } = parseHostPort(input.addr);
    const advertise = isWildcard(host) ? defaultHost(input) : host;
    plan = { hostname: isWildcard(host) ? "0.0.0.0" : host, port, advertise };
  } else {
    const host = input.keyed ? defaultHost(input) : "127.0.0.1";
    plan = { hostname: host, port: 0, advertise: host };
  }
  if (!input.keyed && !input.insecure) {
    // Read as an address, never as a name: "127.evil.test" may resolve anywhere, and a
    // name resolved now could resolve elsewhere at bind time. "localhost" is 127.0.0.1.
    if (plan.hostname === "localhost") plan = { ...plan, hostname: "127.0.0.1" };
    if (plan.advertise === "localhost") plan = { ...plan, advertise: "127.0.0.1" };
    if (!isLoopbackAddress(plan.hostname)) {
      throw new CircuitError(
        "bad request",
        `Refusing to serve ${plan.hostname} without a key: pass --hmac KEYFILE (make one with circuit keygen), or --insecure`,
      );
    }
  }
  return plan;
}

function defaultHost(input: BindInput): string {
  const viaRoute = input.defaultIface && ifaceV4(input.interfaces, input.defaultIface);
  if (viaRoute) return viaRoute;
  const other = input.interfaces.find((i) => i.family === "IPv4" && !isLoopback(i.address));
  return other?.address ?? "127.0.0.1";
}

/**
 * The interface of the IPv4 default route, from `/proc/net/route`.
 *
 * @returns its name, or undefined
 */
export function readDefaultIface(): string | undefined {
  try {
    for (const line of Deno.readTextFileSync("/proc/net/route").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[1] === "00000000" && f[7] === "00000000") return f[0];
    }
  } catch { /* not Linux */ }
  return undefined;
}

/**
 * The host's interfaces.
 *
 * @returns name, family and address of each
 */
export function readInterfaces(): Iface[] {
  return Deno.networkInterfaces().map((i) => ({
    name: i.name,
    family: i.family,
    address: i.address,
  }));
}
