/**
 * Multicast discovery: the announce schedule as a table, then discovery and partition
 * healing between hosts in network namespaces. Those need root; otherwise SKIPPED with the
 * reason (a failure under CI=true).
 */

import {
  assert,
  assertEquals,
  assertOneLineError,
  cli,
  keyFile,
  Server,
  skipTest,
  TempDir,
  waitFor,
} from "./_harness.ts";
import { type Host, Lan, netnsUnavailable } from "./_netns.ts";
import { DEFAULT_DISCOVERY_CONFIG, nextAnnounceDelayMs } from "../net/discovery.ts";

const why = await netnsUnavailable();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Announcement times over `forMs` from the announcer's start, by the real schedule, with
 * `random` giving each jitter draw.
 */
function announcements(forMs: number, random: () => number): number[] {
  const times = [0];
  for (let t = 0; t < forMs;) {
    t += nextAnnounceDelayMs(t, DEFAULT_DISCOVERY_CONFIG, random());
    times.push(t);
  }
  return times;
}

Deno.test("the announce schedule: fast for 3 s, then every 2 s ±20 %, never silent", () => {
  const c = DEFAULT_DISCOVERY_CONFIG;
  // [time since start, random draw, expected delay]
  const rows: Array<[number, number, number]> = [
    [0, 0, 200],
    [0, 0.5, 250],
    [0, 0.999999, 300],
    [c.fastPhaseMs - 1, 0.5, 250],
    [c.fastPhaseMs, 0, 1600],
    [c.fastPhaseMs, 0.5, 2000],
    [c.fastPhaseMs, 0.999999, 2400],
    [70_000, 0.5, 2000], // the original went silent here
    [91_000, 0.25, 1800],
    [86_400_000, 0.75, 2200], // a day on: still steady
  ];
  for (const [since, random, want] of rows) {
    assertEquals(nextAnnounceDelayMs(since, c, random), want, `at ${since} ms, random ${random}`);
  }
  const custom = { ...c, announceFastMs: 10, fastPhaseMs: 100, announceSteadyMs: 1000 };
  assertEquals([0, 99, 100].map((t) => nextAnnounceDelayMs(t, custom, 0.5)), [10, 10, 1000]);
  // Over two hours of draws at both extremes and at random, no gap exceeds the steady
  // maximum and the fast phase sends at least fastPhaseMs / (1.2 × fast) announcements.
  let seed = 1;
  const lcg = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
  for (const random of [() => 0, () => 0.999999, lcg]) {
    const times = announcements(2 * 3600_000, random);
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    assert(Math.max(...gaps) <= c.announceSteadyMs * 1.2, `a gap of ${Math.max(...gaps)} ms`);
    assert(Math.min(...gaps) >= c.announceFastMs * 0.8, `a gap of ${Math.min(...gaps)} ms`);
    const fast = times.filter((t) => t < c.fastPhaseMs).length;
    assert(fast >= Math.floor(c.fastPhaseMs / (c.announceFastMs * 1.2)), `${fast} fast ones`);
    assert(times.at(-1)! >= 2 * 3600_000, "announcing until the end");
  }
});

const GROUP = "228.8.8.8:7711";

async function listing(h: Host, s: Server, key: string): Promise<string[]> {
  const r = await cli(["ls", "-d", s.url, "--hmac", key, "/"], { prefix: h.prefix });
  return r.stdout.split("\n").filter(Boolean);
}

async function allList(pairs: Array<[Host, Server]>, key: string, want: string[]) {
  const expected = JSON.stringify([...want].sort());
  for (const [h, s] of pairs) {
    if (JSON.stringify(await listing(h, s, key)) !== expected) return false;
  }
  return true;
}

if (why) {
  skipTest("discovery", why);
} else {
  const start = (h: Host, key: string, extra: string[] = []) =>
    Server.start({
      prefix: h.prefix,
      args: ["--if", h.iface, "--hmac", key, "--discover", GROUP, ...extra],
    });

  Deno.test("five hosts started in random order with only --discover form one cluster", async () => {
    using tmp = new TempDir();
    const key = await keyFile(tmp.path);
    await using lan = await Lan.create(5);
    const order = [3, 0, 4, 1, 2];
    const servers: Array<[Host, Server]> = [];
    try {
      for (const i of order) servers.push([lan.hosts[i], await start(lan.hosts[i], key)]);
      const t = Date.now();
      const paths = servers.map(([, s]) => s.path);
      await waitFor(() => allList(servers, key, paths), "every host to list all five", 2000);
      assert(Date.now() - t <= 2000);
    } finally {
      await Promise.all(servers.map(([, s]) => s[Symbol.asyncDispose]()));
    }
  });

  Deno.test("a server announces on the steady schedule after the fast phase, and a late one joins", async () => {
    // The schedule itself is the table test above; this proves the real server follows it
    // past the fast phase (the original fell silent after 70 s) in a few steady periods.
    using tmp = new TempDir();
    const key = await keyFile(tmp.path);
    await using lan = await Lan.create(2);
    await using a = await start(lan.hosts[0], key);
    const sent = async () => {
      const r = await cli(["stk", "-d", a.url, "--hmac", key, a.path], {
        prefix: lan.hosts[0].prefix,
      });
      return JSON.parse(r.stdout).Discovery.Sent as number;
    };
    const { fastPhaseMs, announceSteadyMs } = DEFAULT_DISCOVERY_CONFIG;
    await sleep(fastPhaseMs + announceSteadyMs);
    const before = await sent();
    const t = Date.now();
    await sleep(3 * announceSteadyMs);
    const steady = await sent() - before;
    const periods = (Date.now() - t) / announceSteadyMs;
    // Jitter is ±20 %: over `periods` steady periods, at least periods/1.2 - 1 are sent.
    assert(
      steady >= Math.floor(periods / 1.2) - 1,
      `${steady} announcements in ${periods} periods`,
    );
    assert(steady <= Math.ceil(periods / 0.8) + 1, `${steady} announcements in ${periods} periods`);
    await using b = await start(lan.hosts[1], key);
    await waitFor(
      () => allList([[lan.hosts[0], a], [lan.hosts[1], b]], key, [a.path, b.path]),
      "the late server to join",
      5000,
    );
  });

  Deno.test("client discovery finds a server from another host and times out when none", async () => {
    using tmp = new TempDir();
    const key = await keyFile(tmp.path);
    await using lan = await Lan.create(2);
    await using s = await start(lan.hosts[0], key);
    const client = lan.hosts[1];
    const r = await cli(["ls", "--discover", GROUP, "--hmac", key, "/"], { prefix: client.prefix });
    assertEquals([r.code, r.stdout], [0, `${s.path}\n`], r.stderr);
    const viaEnv = await cli(["ls", "/"], {
      prefix: client.prefix,
      env: { CIRCUIT_DISCOVER: GROUP, CIRCUIT_HMAC: key },
    });
    assertEquals(viaEnv.stdout, `${s.path}\n`, viaEnv.stderr);
    const t = Date.now();
    const none = await cli(["ls", "--discover", "228.8.8.9:7711", "--hmac", key, "/"], {
      prefix: client.prefix,
    });
    assertOneLineError(none, /nobody answered within 3000 ms/);
    assert(Date.now() - t < 6000, "timed out promptly");
  });

  Deno.test("a server with the wrong key never joins, and its packets are counted as forged", async () => {
    using tmp = new TempDir();
    const key = await keyFile(tmp.path);
    const other = await keyFile(tmp.path, "other");
    await using lan = await Lan.create(2);
    await using a = await start(lan.hosts[0], key);
    await using b = await start(lan.hosts[1], other);
    await waitFor(
      async () => {
        const r = await cli(["stk", "-d", a.url, "--hmac", key, a.path], {
          prefix: lan.hosts[0].prefix,
        });
        return JSON.parse(r.stdout).Discovery.Dropped.forged >= 3;
      },
      "forged announcements to be counted",
      5000,
    );
    assertEquals(await listing(lan.hosts[0], a, key), [a.path]);
    assertEquals(await listing(lan.hosts[1], b, other), [b.path]);
    const client = await cli(["ls", "--discover", GROUP, "--hmac", other, "/"], {
      prefix: lan.hosts[0].prefix,
    });
    assertEquals(client.stdout, `${b.path}\n`, "a client with the other key finds only its server");
  });

  Deno.test("a cut link splits the cluster and healing it merges it again with no command", async () => {
    using tmp = new TempDir();
    const key = await keyFile(tmp.path);
    await using lan = await Lan.create(3);
    const [h1, h2, h3] = lan.hosts;
    await using s1 = await start(h1, key);
    await using s2 = await start(h2, key);
    await using s3 = await start(h3, key);
    const all = [s1.path, s2.path, s3.path];
    const pairs: Array<[Host, Server]> = [[h1, s1], [h2, s2], [h3, s3]];
    await waitFor(() => allList(pairs, key, all), "one cluster", 3000);
    await lan.cut(h3);
    const cut = Date.now();
    await waitFor(
      () => allList([[h1, s1], [h2, s2]], key, [s1.path, s2.path]),
      "the majority to report the cut host left",
      6000,
    );
    const majority = Date.now() - cut;
    await waitFor(
      () => allList([[h3, s3]], key, [s3.path]),
      "the cut host to report the others left",
      20_000,
    );
    console.log(`cut noticed: majority ${majority} ms, cut host ${Date.now() - cut} ms`);
    await lan.heal(h3);
    const t = Date.now();
    await waitFor(() => allList(pairs, key, all), "the sides to merge again", 10_000);
    assert(Date.now() - t <= 10_000);
    console.log(`healed in ${Date.now() - t} ms`);
  });

  Deno.test("kill -9 of a discovered host is reported left within 2 s", async () => {
    using tmp = new TempDir();
    const key = await keyFile(tmp.path);
    await using lan = await Lan.create(3);
    const servers: Array<[Host, Server]> = [];
    try {
      for (const h of lan.hosts) servers.push([h, await start(h, key)]);
      await waitFor(() => allList(servers, key, servers.map(([, s]) => s.path)), "cluster", 3000);
      servers[1][1].kill("SIGKILL");
      await servers[1][1].status;
      const rest = [servers[0], servers[2]];
      await waitFor(
        () => allList(rest, key, rest.map(([, s]) => s.path)),
        "the kill noticed",
        2000,
      );
    } finally {
      await Promise.all(servers.map(([, s]) => s[Symbol.asyncDispose]()));
    }
  });

  Deno.test("start --discover on loopback only is refused with one line", async () => {
    using tmp = new TempDir();
    assertOneLineError(
      await cli(["start", "--var", tmp.path, "--discover", GROUP]),
      /needs a non-loopback address/,
    );
    assertOneLineError(
      await cli(["start", "--var", tmp.path, "--discover", "1.2.3.4:5"]),
      /IPv4 multicast GROUP:PORT/,
    );
  });
}
