/**
 * SWIM membership with Lifeguard's refinements, after hashicorp/memberlist: each member
 * probes one random member per interval over UDP (ping, then ping-req through others),
 * suspects the ones that stay silent, and declares them dead when the suspicion is not
 * refuted in time; news rides on every packet as gossip, and full state is exchanged now
 * and then (push-pull). Packets are msgpack, signed with the cluster key.
 *
 * The folder is split the way SWIM is explained: `config.ts` (timings), `state.ts`
 * (member states and their rules), `probe.ts` (the probe cycle), `suspicion.ts`
 * (Lifeguard suspicion timeouts), `awareness.ts` (local health), `queue.ts` (the
 * broadcast queue), `gossip.ts` (piggybacking and gossip rounds), `push_pull.ts`
 * (full-state exchange), `messages.ts` (the message schema) and `transport.ts` (packets
 * and the UDP socket). `memberlist.ts` ties them together.
 *
 * @example Two members on one host
 * ```ts
 * import { Memberlist } from "./mod.ts";
 *
 * const addr = { host: "127.0.0.1", port: 0 }; // 0: any free port
 * const a = new Memberlist({
 *   self: { id: "000000000000000a", url: "circuit://127.0.0.1:7001/1/Q000000000000000a", addr },
 *   profile: "test",
 * });
 * const b = new Memberlist({
 *   self: { id: "000000000000000b", url: "circuit://127.0.0.1:7002/2/Q000000000000000b", addr },
 *   profile: "test",
 * });
 * await a.start();
 * await b.start();
 * await b.join([a.self.addr]);
 * console.log(b.members().map((m) => m.id)); // both ids
 * await b.leave();
 * await Promise.all([a.stop(), b.stop()]);
 * ```
 *
 * @module
 */

export {
  DEFAULT_MEMBERSHIP_CONFIG,
  MEMBERSHIP_PROFILES,
  type MembershipConfig,
  membershipConfig,
  type MembershipProfile,
  validateMembershipConfig,
} from "./config.ts";
export { Memberlist, type MemberlistOptions, type MembershipStats } from "./memberlist.ts";
export type { Member, MemberEvent } from "./state.ts";
export type { Addr, MemberRecord, MemberStatus } from "./messages.ts";
export type { PushPullHook, PushPullStats } from "./push_pull.ts";
export type { ProbeStats } from "./probe.ts";
export type { BroadcastQueueStats } from "./queue.ts";
export type { PacketStats } from "./gossip.ts";
export {
  type AdmitFn,
  type DropReason,
  type PacketTransport,
  UdpTransport,
  type UdpTransportOptions,
} from "./transport.ts";
export { remainingSuspicionMs, type SuspicionBounds, suspicionBounds } from "./suspicion.ts";
export { probeAwarenessDelta, type ProbeHealth } from "./awareness.ts";
export { retransmitLimit } from "./queue.ts";
export { pushPullIntervalMs } from "./push_pull.ts";
