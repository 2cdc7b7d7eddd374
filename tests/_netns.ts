/**
 * Test hosts in network namespaces: a bridge and N namespaces, each with its own
 * address on a private /24, made on construction and deleted on dispose. Links can be
 * cut and healed. Traffic only ever goes to addresses inside these namespaces.
 *
 * @module
 */

async function ip(...args: string[]): Promise<void> {
  const r = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  if (!r.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(r.stderr).trim()}`);
  }
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

/** One test host. */
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

let subnet = 0;

/** A bridge with hosts; dispose deletes everything. */
export class Lan implements AsyncDisposable {
  /** The hosts. */
  readonly hosts: Host[] = [];
  #tag: string;
  #bridge: string;

  private constructor(tag: string) {
    this.#tag = tag;
    this.#bridge = `cb${tag}`;
  }

  /**
   * Make a bridge and `n` hosts.
   *
   * @param n how many hosts
   * @returns the LAN
   */
  static async create(n: number): Promise<Lan> {
    const tag = crypto.randomUUID().slice(0, 6);
    const lan = new Lan(tag);
    const net = `10.${90 + (Deno.pid % 50)}.${
      (subnet++ * 7 + Number.parseInt(tag.slice(0, 2), 16)) % 250
    }`;
    try {
      await ip("link", "add", lan.#bridge, "type", "bridge");
      await ip("link", "set", lan.#bridge, "up");
      for (let i = 1; i <= n; i++) {
        const ns = `c${tag}h${i}`, iface = `e${tag}${i}`, peer = `p${tag}${i}`;
        await ip("netns", "add", ns);
        await ip("link", "add", iface, "type", "veth", "peer", "name", peer);
        await ip("link", "set", peer, "master", lan.#bridge, "up");
        await ip("link", "set", iface, "netns", ns);
        const addr = `${net}.${i}`;
        await ip("-n", ns, "addr", "add", `${addr}/24`, "dev", iface);
        await ip("-n", ns, "link", "set", iface, "up");
        await ip("-n", ns, "link", "set", "lo", "up");
        lan.hosts.push({ ns, iface, addr, prefix: ["ip", "netns", "exec", ns] });
      }
    } catch (err) {
      await lan[Symbol.asyncDispose]();
      throw err;
    }
    return lan;
  }

  /**
   * Cut a host off the bridge.
   *
   * @param h the host
   */
  async cut(h: Host): Promise<void> {
    await ip("link", "set", this.#peer(h), "down");
  }

  /**
   * Reconnect a host.
   *
   * @param h the host
   */
  async heal(h: Host): Promise<void> {
    await ip("link", "set", this.#peer(h), "up");
  }

  #peer(h: Host): string {
    return `p${this.#tag}${h.iface.slice(1 + this.#tag.length)}`;
  }

  /** Delete the namespaces (their veths go with them) and the bridge. */
  async [Symbol.asyncDispose](): Promise<void> {
    for (const h of this.hosts) await ip("netns", "del", h.ns).catch(() => {});
    await ip("link", "del", this.#bridge).catch(() => {});
  }
}
