/**
 * Membership timings and bounds, in one place. Every field has its unit in its name;
 * timing knobs state the formula they feed. Named profiles list only what differs from
 * the LAN default, and tests speed up by choosing the `test` profile, never by patching
 * state.
 *
 * @module
 */

import { CircuitError } from "../errors.ts";

/** Every timing constant and bound of the membership protocol. */
export interface MembershipConfig {
  /**
   * Time between two probes of randomly ordered members, in ms. The effective interval is
   * `probeIntervalMs × (awareness score + 1)`, so an unhealthy node slows down. Half of
   * memberlist's LAN value, so a silent failure is declared within about 3 s.
   * @default {500}
   */
  probeIntervalMs: number;
  /**
   * Time to wait for the direct ack before asking others to probe, in ms. Scaled like the
   * interval: `probeTimeoutMs × (awareness score + 1)`. Should be a round-trip time at the
   * 99th percentile; must be below probeIntervalMs.
   * @default {200}
   */
  probeTimeoutMs: number;
  /**
   * How many random members are asked to ping a member that missed its direct ack
   * (ping-req). Each also answers with a nack when it hears nothing, which feeds awareness.
   * @default {3}
   */
  indirectChecks: number;
  /**
   * Suspicion timeout multiplier. The shortest suspicion timeout is
   * `suspicionMult × max(1, log10(n)) × probeIntervalMs` for `n` live members.
   * memberlist's LAN value is 4 (with a 1 s probe interval); 3 with 500 ms probes puts
   * a silent failure of one member in 10 at about 2.3 s everywhere, with no false leave
   * in the bench's 300 s soak (one host under CPU load, one link losing 10 %).
   * @default {3}
   */
  suspicionMult: number;
  /**
   * Independent confirmations that bring a suspicion's timeout down to the shortest; with
   * fewer than this many members able to confirm (not us, not the suspect), the shortest
   * timeout applies from the start. memberlist derives it as `suspicionMult − 2`; kept
   * apart here so a shorter timeout does not make a lone accuser in a small cluster (a
   * host cut off from two others) wait the longest timeout for confirmations that cannot
   * come.
   * @default {2}
   */
  suspicionConfirmations: number;
  /**
   * The longest suspicion timeout, used while nobody confirms, is
   * `suspicionMaxTimeoutMult × shortest suspicion timeout`.
   * @default {6}
   */
  suspicionMaxTimeoutMult: number;
  /**
   * Each broadcast is sent `retransmitMult × ceil(log10(n + 1))` times before it is
   * retired, for `n` live members.
   * @default {4}
   */
  retransmitMult: number;
  /**
   * Time between gossip rounds while nothing is queued (only the buddy messages to suspect
   * and dead members go out then), in ms. @default {200}
   */
  gossipIntervalMs: number;
  /**
   * Time between gossip rounds while broadcasts are queued, in ms; at most
   * `gossipIntervalMs`. Each broadcast is sent a bounded number of times either way, so a
   * shorter interval sends news sooner, not more often: a join storm or a death reaches
   * everyone in a few tens of ms instead of a few gossip intervals.
   * @default {20}
   */
  newsIntervalMs: number;
  /** Members sent queued broadcasts in each gossip round. @default {3} */
  gossipNodes: number;
  /**
   * Time between full-state exchanges with one random member, in ms. Above 32 members it
   * grows as `pushPullIntervalMs × (ceil(log2(n) − log2(32)) + 1)`; 0 turns it off.
   * @default {30000}
   */
  pushPullIntervalMs: number;
  /**
   * After a member joins our view, one extra full-state exchange with a random member
   * this long after, in ms (one at a time: a burst of joins makes one). Gossip of a join
   * storm is sent a bounded number of times; a member too busy to read its socket then can
   * miss several joins and would otherwise wait for the periodic push-pull (30–60 s).
   * 0 turns it off.
   * @default {2000}
   */
  pushPullAfterJoinMs: number;
  /**
   * Time to wait for a peer's state in a push-pull (join or periodic), in ms.
   * @default {2000}
   */
  syncTimeoutMs: number;
  /**
   * Upper bound of the local health multiplier (Lifeguard): the awareness score stays in
   * `[0, awarenessMaxMultiplier − 1]`, and probe interval, probe timeout and the timeout
   * of a suspicion we start are multiplied by `score + 1`.
   * @default {8}
   */
  awarenessMaxMultiplier: number;
  /**
   * A timer that fires more than this late, in ms, means this process was starved (CPU
   * quota, a loaded host, a long GC pause, a paused VM): what it would conclude is not
   * trusted. A probe whose wait ended that late is inconclusive (no suspicion; local
   * health worsens by one), a suspicion that expires that late is re-armed for its
   * shortest timeout instead of declaring the member dead, and a late probe tick worsens
   * local health. Without it a starved member read its timers before its socket: it
   * declared healthy members dead in bulk, whose refutations were waiting unread.
   * @default {250}
   */
  stallMs: number;
  /**
   * Flap damping: for this long, in ms, after a member came back from dead (it refuted a
   * death, so it was declared dead falsely: starved, or behind a lossy link), suspicions of
   * it run `flapSuspicionMult` times longer, so such a member rejoins once instead of
   * being declared dead again in a loop. @default {60000}
   */
  flapWindowMs: number;
  /**
   * Multiplier of the suspicion timeouts of a member that came back from dead within
   * `flapWindowMs`; 1 turns damping off. @default {2}
   */
  flapSuspicionMult: number;
  /**
   * How long a dead or left member is remembered before it is reaped, in ms. Stale gossip
   * about it is refused while it is remembered, and a dead one is told now and then that
   * it is held dead, so one that was only slow hears it and refutes.
   * @default {30000}
   */
  deadReapMs: number;
  /**
   * How long `leave()` waits for its announcement to be retransmitted to the cluster, in
   * ms.
   * @default {500}
   */
  leaveTimeoutMs: number;
  /**
   * Bound of the broadcast queue, in messages. At the bound the oldest message is dropped,
   * counted and logged (push-pull repairs what it would have said).
   * @default {1024}
   */
  maxQueuedBroadcasts: number;
  /**
   * Largest datagram sent, in bytes, MAC included: below a 1500-byte Ethernet MTU with
   * room for IP and UDP headers.
   * @default {1400}
   */
  maxPacketBytes: number;
  /**
   * Packets whose timestamp is further than this from our clock are dropped as stale, in
   * ms: the replay window.
   * @default {30000}
   */
  packetMaxSkewMs: number;
  /**
   * Packet nonces remembered to catch replays within the window (oldest forgotten first).
   * Should exceed `packets per second × 2 × packetMaxSkewMs / 1000`.
   * @default {16384}
   */
  nonceCacheSize: number;
}

/**
 * The defaults, for a LAN: memberlist's LAN values, but probing twice as often (a LAN
 * round trip is well below a millisecond, and circuit promises to notice a silent
 * failure within 3 s where memberlist takes 5 to 7).
 */
export const DEFAULT_MEMBERSHIP_CONFIG: Readonly<MembershipConfig> = Object.freeze({
  probeIntervalMs: 500,
  probeTimeoutMs: 200,
  indirectChecks: 3,
  suspicionMult: 3,
  suspicionConfirmations: 2,
  suspicionMaxTimeoutMult: 6,
  retransmitMult: 4,
  gossipIntervalMs: 200,
  newsIntervalMs: 20,
  gossipNodes: 3,
  pushPullIntervalMs: 30_000,
  pushPullAfterJoinMs: 2000,
  syncTimeoutMs: 2000,
  awarenessMaxMultiplier: 8,
  stallMs: 250,
  flapWindowMs: 60_000,
  flapSuspicionMult: 2,
  deadReapMs: 30_000,
  leaveTimeoutMs: 500,
  maxQueuedBroadcasts: 1024,
  maxPacketBytes: 1400,
  packetMaxSkewMs: 30_000,
  nonceCacheSize: 16_384,
});

/** The name of a profile. */
export type MembershipProfile = "lan" | "wan" | "test";

/**
 * Named profiles: only the fields that differ from {@linkcode DEFAULT_MEMBERSHIP_CONFIG}.
 * `wan` tolerates long round trips; `test` runs everything about ten times faster for
 * in-process clusters on 127.0.0.1.
 */
export const MEMBERSHIP_PROFILES: Readonly<
  Record<MembershipProfile, Readonly<Partial<MembershipConfig>>>
> = Object.freeze({
  lan: Object.freeze({}),
  wan: Object.freeze({
    probeIntervalMs: 5000,
    probeTimeoutMs: 3000,
    suspicionMult: 6,
    suspicionConfirmations: 4,
    gossipIntervalMs: 500,
    newsIntervalMs: 100,
    gossipNodes: 4,
    pushPullIntervalMs: 60_000,
    syncTimeoutMs: 10_000,
    stallMs: 1000,
    flapWindowMs: 300_000,
    deadReapMs: 60_000,
  }),
  test: Object.freeze({
    probeIntervalMs: 100,
    probeTimeoutMs: 40,
    indirectChecks: 2,
    suspicionMult: 4,
    suspicionMaxTimeoutMult: 4,
    gossipIntervalMs: 20,
    newsIntervalMs: 5,
    pushPullIntervalMs: 2000,
    pushPullAfterJoinMs: 200,
    syncTimeoutMs: 500,
    stallMs: 100,
    flapWindowMs: 6000,
    deadReapMs: 3000,
    leaveTimeoutMs: 300,
  }),
});

const INTEGER_FIELDS: ReadonlySet<keyof MembershipConfig> = new Set([
  "indirectChecks",
  "suspicionMult",
  "suspicionConfirmations",
  "suspicionMaxTimeoutMult",
  "retransmitMult",
  "gossipNodes",
  "awarenessMaxMultiplier",
  "maxQueuedBroadcasts",
  "maxPacketBytes",
  "nonceCacheSize",
]);

/** Fields that may be zero (the feature is off). */
const ZERO_ALLOWED: ReadonlySet<keyof MembershipConfig> = new Set([
  "indirectChecks",
  "pushPullAfterJoinMs",
  "suspicionConfirmations",
  "pushPullIntervalMs",
  "gossipNodes",
]);

/**
 * Check every field of a complete config.
 *
 * @param config the config to check
 * @returns the same config
 * @throws {CircuitError} `bad request` naming the first bad field
 */
export function validateMembershipConfig(config: MembershipConfig): MembershipConfig {
  const bad = (field: string, want: string, got: unknown): never => {
    throw new CircuitError(
      "bad request",
      `Checking membership config failed: "${field}" must be ${want}, got "${got}"`,
    );
  };
  for (const field of Object.keys(DEFAULT_MEMBERSHIP_CONFIG) as (keyof MembershipConfig)[]) {
    const v = config[field];
    const min = ZERO_ALLOWED.has(field) ? 0 : 1;
    if (typeof v !== "number" || !Number.isFinite(v) || v < min) {
      bad(field, min ? "a positive number" : "a number ≥ 0", v);
    }
    if (INTEGER_FIELDS.has(field) && !Number.isInteger(v)) bad(field, "an integer", v);
  }
  if (config.probeTimeoutMs >= config.probeIntervalMs) {
    bad("probeTimeoutMs", "below probeIntervalMs", config.probeTimeoutMs);
  }
  if (config.newsIntervalMs > config.gossipIntervalMs) {
    bad("newsIntervalMs", "at most gossipIntervalMs", config.newsIntervalMs);
  }
  if (config.suspicionMult < 2) bad("suspicionMult", "at least 2", config.suspicionMult);
  if (config.maxPacketBytes < 512 || config.maxPacketBytes > 65_000) {
    bad("maxPacketBytes", "between 512 and 65000", config.maxPacketBytes);
  }
  return config;
}

/**
 * Build a config: the default, then a profile's differences, then overrides; validated.
 *
 * @param profile `lan`, `wan` or `test`
 * @param overrides fields to change last
 * @returns a complete, validated config
 * @throws {CircuitError} `bad request` naming the first bad field
 */
export function membershipConfig(
  profile: MembershipProfile = "lan",
  overrides: Partial<MembershipConfig> = {},
): MembershipConfig {
  const base = MEMBERSHIP_PROFILES[profile];
  if (!base) {
    throw new CircuitError(
      "bad request",
      `Choosing a membership profile failed: expected lan, wan or test, got "${profile}"`,
    );
  }
  return validateMembershipConfig({ ...DEFAULT_MEMBERSHIP_CONFIG, ...base, ...overrides });
}
