/**
 * The network-namespace lab the tests and the benchmark share: a bridge and N hosts, each
 * a namespace with its own address on a private /24, made on creation and deleted on
 * dispose (or synchronously, on Ctrl-C). Links can be cut and healed; the lab can give
 * the bridge an address so this (root) namespace reaches the hosts. Traffic only ever goes
 * to addresses inside these namespaces. Needs root and iproute2.
 *
 * Names, from a random six-character tag: the bridge `cbTAG`, host i's namespace
 * `cTAGhi`, its interface `eTAGi` and the root end of its veth `pTAGi`.
 *
 * @module
 */

async function ip(...args: string[]): Promise<string> {
  const r = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
  if (!r.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(r.stderr).trim()}`);
  }
  return new TextDecoder().decode(r.stdout);
}

function ipSync(...args: string[]): void {
  new Deno.Command("ip", { args, stdout: "null", stderr: "null" }).outputSync();
}

/**
 * Why namespaced tests cannot run here, or null when they can.
 *
 * @returns the reason, or null
 */
export async function netnsUnavailable(): Promise<string | null> {
  if (Deno.uid() !== 0) return "network namespaces need root";
  try {
    const r = await new Deno.Command("ip", { args: ["-V"], stdout: "null", stderr: "null" })
      .output();
    if (!r.success) return "the ip command (iproute2) does not work";
  } catch {
    return "the ip command (iproute2) is not installed";
  }
  return null;
}

/** One host of a {@linkcode Lan}. */
export interface Host {
  /** Namespace name. */
  ns: string;
  /** Interface name inside the namespace. */
  iface: string;
  /** Its IPv4 address. */
  addr: string;
  /** Prefix for running a command inside: `ip netns exec NS`. */
  prefix: string[];
}

/** Options of {@linkcode Lan.create}. */
export interface LanOptions {
  /**
   * Give the bridge the address `.254` of the LAN's subnet, so processes in this (root)
   * namespace reach the hosts (the benchmark asks them from here). Default false.
   */
  reachable?: boolean;
}

/** The last octet of the bridge's address when the LAN is {@linkcode LanOptions.reachable}. */
export const BRIDGE_HOST_OCTET = 254;

let subnet = 0;

/** LANs not yet deleted, for {@linkcode Lan.deleteAllSync}. */
const live = new Set<Lan>();

/** A bridge with hosts; dispose deletes everything. */
export class Lan implements AsyncDisposable {
  /** The hosts. */
  readonly hosts: Host[] = [];
  /** The bridge's name. */
  readonly bridge: string;
  /** The bridge's address when created reachable, else null. */
  rootAddr: string | null = null;
  #tag: string;

  private constructor(tag: string) {
    this.#tag = tag;
    this.bridge = `cb${tag}`;
  }

  /**
   * Make a bridge and `n` hosts.
   *
   * @param n how many hosts
   * @param options whether this namespace reaches them
   * @returns the LAN
   * @throws {Error} naming the `ip` command that failed (everything made is deleted)
   */
  static async create(n: number, options: LanOptions = {}): Promise<Lan> {
    const tag = crypto.randomUUID().slice(0, 6);
    const lan = new Lan(tag);
    live.add(lan);
    const net = `10.${90 + (Deno.pid % 50)}.${
      (subnet++ * 7 + Number.parseInt(tag.slice(0, 2), 16)) % 250
    }`;
    try {
      await ip("link", "add", lan.bridge, "type", "bridge");
      await ip("link", "set", lan.bridge, "up");
      for (let i = 1; i <= n; i++) {
        const ns = `c${tag}h${i}`, iface = `e${tag}${i}`, peer = `p${tag}${i}`;
        await ip("netns", "add", ns);
        await ip("link", "add", iface, "type", "veth", "peer", "name", peer);
        await ip("link", "set", peer, "master", lan.bridge, "up");
        await ip("link", "set", iface, "netns", ns);
        const addr = `${net}.${i}`;
        await ip("-n", ns, "addr", "add", `${addr}/24`, "dev", iface);
        await ip("-n", ns, "link", "set", iface, "up");
        await ip("-n", ns, "link", "set", "lo", "up");
        lan.hosts.push({ ns, iface, addr, prefix: ["ip", "netns", "exec", ns] });
      }
      if (options.reachable) await lan.#reach(net);
    } catch (err) {
      await lan[Symbol.asyncDispose]();
      throw err;
    }
    return lan;
  }

  async #reach(net: string): Promise<void> {
    const addr = `${net}.${BRIDGE_HOST_OCTET}`;
    await ip("addr", "add", `${addr}/24`, "dev", this.bridge);
    this.rootAddr = addr;
    const first = this.hosts[0]?.addr;
    if (!first) return;
    const route = await ip("route", "get", first);
    if (!route.includes(`dev ${this.bridge}`)) {
      throw new Error(`${first} is not routed over ${this.bridge}: ${route}`);
    }
  }

  /**
   * The root-namespace end of a host's veth: its counters are the host's traffic (what
   * it receives the host sent).
   *
   * @param h the host
   * @returns the interface name
   */
  peerOf(h: Host): string {
    return `p${this.#tag}${h.iface.slice(1 + this.#tag.length)}`;
  }

  /**
   * Cut a host off the bridge.
   *
   * @param h the host
   */
  async cut(h: Host): Promise<void> {
    await ip("link", "set", this.peerOf(h), "down");
  }

  /**
   * Reconnect a host.
   *
   * @param h the host
   */
  async heal(h: Host): Promise<void> {
    await ip("link", "set", this.peerOf(h), "up");
  }

  /** Delete the namespaces and the bridge synchronously (from a signal handler). */
  deleteSync(): void {
    for (const h of this.hosts) ipSync("netns", "del", h.ns);
    ipSync("link", "del", this.bridge);
    live.delete(this);
  }

  /** Delete every LAN not yet deleted, synchronously (Ctrl-C). */
  static deleteAllSync(): void {
    for (const lan of [...live]) lan.deleteSync();
  }

  /** Delete the namespaces (their veths go with them) and the bridge. */
  async [Symbol.asyncDispose](): Promise<void> {
    for (const h of this.hosts) await ip("netns", "del", h.ns).catch(() => {});
    await ip("link", "del", this.bridge).catch(() => {});
    live.delete(this);
  }
}
