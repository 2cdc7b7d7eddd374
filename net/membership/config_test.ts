import { assert, assertEquals, assertThrows } from "./_testing.ts";
import {
  DEFAULT_MEMBERSHIP_CONFIG,
  MEMBERSHIP_PROFILES,
  membershipConfig,
  validateMembershipConfig,
} from "./config.ts";

Deno.test("membershipConfig() layers default, profile and overrides", () => {
  assertEquals(membershipConfig(), DEFAULT_MEMBERSHIP_CONFIG);
  const test = membershipConfig("test", { gossipNodes: 5 });
  assertEquals(test.probeIntervalMs, MEMBERSHIP_PROFILES.test.probeIntervalMs);
  assertEquals(test.gossipNodes, 5);
  assertEquals(test.retransmitMult, DEFAULT_MEMBERSHIP_CONFIG.retransmitMult);
  assert(Object.isFrozen(DEFAULT_MEMBERSHIP_CONFIG) && Object.isFrozen(MEMBERSHIP_PROFILES.test));
  for (const p of ["lan", "wan", "test"] as const) membershipConfig(p);
});

Deno.test("validateMembershipConfig() names the bad field", () => {
  const bad: [Partial<typeof DEFAULT_MEMBERSHIP_CONFIG>, string][] = [
    [{ probeIntervalMs: 0 }, "probeIntervalMs"],
    [{ probeTimeoutMs: 2000 }, "probeTimeoutMs"],
    [{ indirectChecks: 1.5 }, "indirectChecks"],
    [{ gossipNodes: -1 }, "gossipNodes"],
    [{ suspicionMult: 1 }, "suspicionMult"],
    [{ maxPacketBytes: 100 }, "maxPacketBytes"],
    [{ deadReapMs: Number.NaN }, "deadReapMs"],
    [{ suspicionConfirmations: -1 }, "suspicionConfirmations"],
    [{ suspicionConfirmations: 1.5 }, "suspicionConfirmations"],
    [{ pushPullAfterJoinMs: -5 }, "pushPullAfterJoinMs"],
    [{ newsIntervalMs: 0 }, "newsIntervalMs"],
    [{ newsIntervalMs: 201 }, "newsIntervalMs"],
  ];
  for (const [override, field] of bad) {
    const err = assertThrows(
      () => validateMembershipConfig({ ...DEFAULT_MEMBERSHIP_CONFIG, ...override }),
      "bad request",
    );
    assert(err.message.includes(`"${field}"`), err.message);
  }
  assertThrows(() => membershipConfig("moon" as "lan"), "bad request");
  assertEquals(membershipConfig("lan", { pushPullIntervalMs: 0 }).pushPullIntervalMs, 0);
  assertEquals(membershipConfig("lan", { suspicionConfirmations: 0 }).suspicionConfirmations, 0);
  assertEquals(membershipConfig("lan", { pushPullAfterJoinMs: 0 }).pushPullAfterJoinMs, 0);
});
