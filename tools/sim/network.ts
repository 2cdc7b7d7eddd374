/**
 * The simulated network of the membership simulator: datagrams between members with
 * per-pair latency (two datacenters for the WAN case), random loss, partitions and
 * crashed hosts, and push-pulls carried as the server carries them (over its reliable
 * connections, through a {@linkcode PushPullHook}). Every send and delivery is an event
 * of {@linkcode VirtualTime}; bytes are counted per member.
 *
 * @module
 */

import { Packr } from "msgpackr/pack";
import type {
  Addr,
  MemberRecord,
  PacketTransport,
  PushPullHook,
} from "../../net/membership/mod.ts";
import type { VirtualTime } from "./virtual_time.ts";

/** IP and UDP headers counted on top of each datagram's payload, in bytes. */
export const UDP_OVERHEAD_BYTES = 28;

/** Options of {@linkcode SimNetwork}. */
export interface SimNetworkOptions {
  /** The event queue. */
  time: VirtualTime;
  /** One-way latency between two members of one datacenter: `[min, max]` ms by pair. */
  lanMs?: [number, number];
  /** One-way latency between the two datacenters, in ms (0: one datacenter). */
  interDcMs?: number;
  /** Random per-packet jitter, mean of an exponential, in ms. @default {0.05} */
  jitterMs?: number;
  /** The random source (seeded by the simulator). */
  random: () => number;
}

/** A member's place on the network. */
interface Host {
  addr: Addr;
  dc: number;
  transport?: SimTransport;
}

/** Datagrams, latency, loss, partitions; push-pull over reliable connections. */
export class SimNetwork {
  #o: Required<SimNetworkOptions>;
  #hosts: Host[] = [];
  #byAddr = new Map<string, number>();
  #packr = new Packr({ useRecords: false, moreTypes: false });
  /** Per-member bytes sent (datagrams with headers, push-pull payloads). */
  sentBytes: number[] = [];
  /** Per-member datagrams sent. */
  sentPackets: number[] = [];
  /** Whether a member's host is down (sends and receives nothing). */
  down: boolean[] = [];
  /** Partition group of each member; packets cross no group boundary. */
  group: number[] = [];
  /** Probability that a datagram is lost. */
  loss = 0;
  /** While set, `alive` gossip is stripped from datagrams and push-pulls fail (bootstrap). */
  quiet = false;
  /** Push-pulls carried, and their bytes. */
  syncs = 0;

  /**
   * Make an empty network.
   *
   * @param options the event queue, latencies, random source
   */
  constructor(options: SimNetworkOptions) {
    this.#o = { lanMs: [0.1, 0.5], interDcMs: 0, jitterMs: 0.05, ...options };
  }

  /**
   * Place a member.
   *
   * @param dc its datacenter, 0 or 1
   * @returns its index and address
   */
  add(dc = 0): { index: number; addr: Addr } {
    const index = this.#hosts.length;
    const addr = { host: `10.${dc}.${(index >> 8) & 255}.${index & 255}`, port: 7946 };
    this.#hosts.push({ addr, dc });
    this.#byAddr.set(`${addr.host}:${addr.port}`, index);
    this.sentBytes.push(0);
    this.sentPackets.push(0);
    this.down.push(false);
    this.group.push(0);
    return { index, addr };
  }

  /**
   * The member at an address.
   *
   * @param addr a membership address
   * @returns its index, or -1
   */
  indexOf(addr: Addr): number {
    return this.#byAddr.get(`${addr.host}:${addr.port}`) ?? -1;
  }

  /**
   * A member's transport.
   *
   * @param index the member
   * @returns a transport bound to its address
   */
  transport(index: number): SimTransport {
    const t = new SimTransport(this, index, this.#hosts[index].addr);
    this.#hosts[index].transport = t;
    return t;
  }

  /**
   * One-way latency from `a` to `b` for one packet.
   *
   * @param a sender
   * @param b receiver
   * @returns ms
   */
  latency(a: number, b: number): number {
    const [lo, hi] = this.#o.lanMs;
    // A stable value per unordered pair, from a cheap integer hash.
    let h = Math.imul(Math.min(a, b) + 1, 0x9e3779b1) ^ Math.imul(Math.max(a, b) + 7, 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
    const base = lo + ((h >>> 0) / 2 ** 32) * (hi - lo);
    const dc = this.#hosts[a].dc !== this.#hosts[b].dc ? this.#o.interDcMs : 0;
    return base + dc - Math.log(1 - this.#o.random()) * this.#o.jitterMs;
  }

  /**
   * Whether `a` can reach `b` now (both up, same partition group).
   *
   * @param a one member
   * @param b another
   * @returns whether packets can pass
   */
  reachable(a: number, b: number): boolean {
    return !this.down[a] && !this.down[b] && this.group[a] === this.group[b];
  }

  /** Send a datagram from member `from` (called by its transport). */
  send(from: number, to: Addr, bytes: Uint8Array): void {
    if (this.down[from]) return;
    this.sentBytes[from] += bytes.length + UDP_OVERHEAD_BYTES;
    this.sentPackets[from]++;
    const j = this.indexOf(to);
    if (j < 0 || !this.reachable(from, j) || this.#o.random() < this.loss) return;
    if (this.quiet) {
      const stripped = this.#strip(bytes);
      if (!stripped) return;
      bytes = stripped;
    }
    const fromAddr = this.#hosts[from].addr;
    const t = this.#o.time;
    t.schedule(
      () => {
        if (this.reachable(from, j)) this.#hosts[j].transport?.deliver(bytes, fromAddr);
      },
      this.latency(from, j),
      j,
      1,
    );
  }

  /**
   * The push-pull hook of member `i`: the exchange travels over a reliable connection
   * (no loss, one latency each way), and fails by timing out when the peer is down or
   * cut off, as a dial would.
   *
   * @param i the member
   * @param answer how a peer answers: its `handleSync`
   * @param id member `i`'s id (the peer's `from`)
   * @returns the hook
   */
  pushPullHook(
    i: number,
    answer: (peer: number, local: MemberRecord[], from: string) => MemberRecord[],
    id: string,
  ): PushPullHook {
    return (peer, local, { signal }) =>
      new Promise((resolve, reject) => {
        signal.addEventListener("abort", () => reject(new Error("push-pull timed out")), {
          once: true,
        });
        const j = this.indexOf(peer);
        if (this.quiet || j < 0 || !this.reachable(i, j)) return;
        this.syncs++;
        this.sentBytes[i] += this.#packr.pack(local).length;
        const t = this.#o.time;
        t.schedule(
          () => {
            if (!this.reachable(i, j) || signal.aborted) return;
            const theirs = answer(j, local, id);
            this.sentBytes[j] += this.#packr.pack(theirs).length;
            t.schedule(() => resolve(theirs), this.latency(j, i), i, 1);
          },
          this.latency(i, j),
          j,
          1,
        );
      });
  }

  /**
   * During bootstrap every member learns every other at once and queues an `alive` for
   * each; carried, they would cost each receiver a full table scan per message. Strip
   * them (a message's first field is `t`, its type, after a map header), keep the rest.
   */
  #strip(bytes: Uint8Array): Uint8Array | null {
    const body = this.#packr.unpack(bytes) as { m: Uint8Array[] };
    const isAlive = (b: Uint8Array) => {
      const at = b[0] === 0xde ? 3 : 1; // map16 or fixmap
      return b[at] === 0xa1 && b[at + 1] === 0x74 && b[at + 2] === 4;
    };
    const kept = body.m.filter((b) => !isAlive(b));
    if (kept.length === 0) return null;
    if (kept.length === body.m.length) return bytes;
    return this.#packr.pack({ ...body, m: kept });
  }
}

/** A member's end of the simulated network. */
export class SimTransport implements PacketTransport {
  #net: SimNetwork;
  #index: number;
  #addr: Addr;
  #fn: ((bytes: Uint8Array, from: Addr) => void) | undefined;
  #closed = false;

  /**
   * Made by {@linkcode SimNetwork.transport}.
   *
   * @param net the network
   * @param index the member
   * @param addr its address
   */
  constructor(net: SimNetwork, index: number, addr: Addr) {
    this.#net = net;
    this.#index = index;
    this.#addr = addr;
  }

  /** Our address. */
  get addr(): Addr {
    return this.#addr;
  }

  /**
   * Send a datagram.
   *
   * @param to where
   * @param bytes the datagram
   */
  send(to: Addr, bytes: Uint8Array): void {
    if (!this.#closed) this.#net.send(this.#index, to, bytes);
  }

  /**
   * Set the receiver.
   *
   * @param fn called per datagram
   */
  listen(fn: (bytes: Uint8Array, from: Addr) => void): void {
    this.#fn = fn;
  }

  /**
   * Hand a datagram to the receiver (called by the network).
   *
   * @param bytes the datagram
   * @param from its sender
   */
  deliver(bytes: Uint8Array, from: Addr): void {
    if (!this.#closed) this.#fn?.(bytes, from);
  }

  /** Stop sending and receiving. */
  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}
