/**
 * Owners of loopback TCP sockets (server/local_peer.ts, server/sock_diag.ts), with real
 * sockets and the real kernel: both ways of looking (the kernel's `sock_diag` and the
 * `/proc/net/tcp` tables) give the right user for IPv4, IPv6 and IPv4-mapped connections,
 * in both directions; a burst of lookups shares a few table reads; a closed connection is
 * never answered from an earlier read; another user's socket is reported as theirs; a
 * keyless server subprocess takes 200 of its own user's connections promptly.
 */

import { admitLocalPeer, isLoopbackIp, parseIp, TcpOwners } from "./local_peer.ts";
import { MAX_PREAUTH_PER_ADDRESS } from "./config.ts";
import { type Connection, dial } from "../net/conn.ts";
import { parseUrl } from "../net/url.ts";
import { assert, assertEquals } from "../tests/_assert.ts";
import { missingTool, Server, skipTest } from "../tests/_harness.ts";

const LINUX = Deno.build.os === "linux";
const MODES = [{ sockDiag: true }, { sockDiag: false }] as const;
const label = (m: { sockDiag: boolean }) => m.sockDiag ? "kernel" : "tables";

/** Both ends of `n` loopback connections to a listener on `hostname`, connected as `to`. */
class Pairs implements Disposable {
  readonly accepted: Deno.TcpConn[] = [];
  readonly dialed: Deno.TcpConn[] = [];
  #listener: Deno.TcpListener;

  private constructor(listener: Deno.TcpListener) {
    this.#listener = listener;
  }

  static async open(n: number, hostname: string, to = hostname): Promise<Pairs> {
    const pairs = new Pairs(Deno.listen({ hostname, port: 0 }));
    const port = pairs.#listener.addr.port;
    for (let i = 0; i < n; i++) {
      const dialing = Deno.connect({ hostname: to, port });
      pairs.accepted.push(await pairs.#listener.accept());
      pairs.dialed.push(await dialing);
    }
    return pairs;
  }

  /** Both ends' addresses, for a lookup of the far end. */
  get ends(): { remote: Deno.NetAddr; local: Deno.NetAddr }[] {
    return [...this.accepted, ...this.dialed].map((c) => ({
      remote: c.remoteAddr,
      local: c.localAddr,
    }));
  }

  [Symbol.dispose](): void {
    for (const c of [...this.accepted, ...this.dialed]) {
      try {
        c.close();
      } catch { /* closed by the test */ }
    }
    this.#listener.close();
  }
}

Deno.test("parseIp and isLoopbackIp read IPv4, IPv6 and IPv4-mapped addresses", () => {
  assertEquals([...parseIp("127.0.0.1")!], [127, 0, 0, 1]);
  assertEquals([...parseIp("[::ffff:7f00:1]")!].slice(10), [0xff, 0xff, 127, 0, 0, 1]);
  assertEquals(parseIp("::1")![15], 1);
  assertEquals(parseIp("127.evil.test"), null);
  assertEquals(
    ["127.1.2.3", "::1", "::ffff:127.0.0.1", "10.0.0.1", "::2", "x"].map(isLoopbackIp),
    [true, true, true, false, false, false],
  );
});

if (!LINUX) {
  skipTest("owners of loopback TCP sockets", "the socket tables are Linux only");
} else {
  for (const mode of MODES) {
    Deno.test(`TcpOwners (${label(mode)}): IPv4, IPv6 and IPv4-mapped, both directions`, async () => {
      const owners = new TcpOwners(mode);
      for (const [listen, to] of [["127.0.0.1"], ["::1"], ["::", "127.0.0.1"]]) {
        using pairs = await Pairs.open(2, listen, to);
        for (const end of pairs.ends) {
          assertEquals(await owners.owner(end), Deno.uid(), `${listen} via ${to ?? listen}`);
        }
      }
      assertEquals(owners.stats.sockDiag, mode.sockDiag, "kernel queries as asked");
    });

    Deno.test(`TcpOwners (${label(mode)}): 200 concurrent lookups, all right, few reads`, async () => {
      using pairs = await Pairs.open(100, "127.0.0.1");
      const owners = new TcpOwners(mode);
      const t0 = performance.now();
      const uids = await Promise.all(pairs.ends.map((e) => owners.owner(e)));
      const ms = performance.now() - t0;
      assertEquals(uids.filter((u) => u === Deno.uid()).length, 200, "every owner found");
      const s = owners.stats;
      assertEquals(s.lookups, 200, "lookups counted");
      if (mode.sockDiag) {
        assertEquals([s.reads, s.queries], [0, 200], "one kernel query each, no table read");
      } else {
        assert(s.reads <= 10, `200 lookups made ${s.reads} table reads`);
      }
      console.log(
        `${label(mode)}: 200 concurrent lookups in ${ms.toFixed(1)} ms, ${s.reads} reads`,
      );
    });

    Deno.test(`TcpOwners (${label(mode)}): a closed connection is not answered`, async () => {
      using pairs = await Pairs.open(1, "127.0.0.1");
      const owners = new TcpOwners(mode);
      const end = pairs.ends[0];
      assertEquals(await owners.owner(end), Deno.uid(), "while connected");
      pairs.dialed[0].close();
      const t0 = performance.now();
      assertEquals(await owners.owner(end), null, "the far end has closed");
      const ms = performance.now() - t0;
      assert(ms < 1000, `a refused lookup took ${ms.toFixed(0)} ms`);
      if (!mode.sockDiag) assert(owners.stats.reads >= 2, "a miss is read again");
    });
  }

  Deno.test("admitLocalPeer admits our own loopback client, and any non-loopback one", async () => {
    using pairs = await Pairs.open(1, "127.0.0.1");
    assertEquals(await admitLocalPeer(pairs.ends[0]), null);
    const far = { hostname: "192.0.2.1", port: 1 }, near = { hostname: "192.0.2.2", port: 2 };
    assertEquals(await admitLocalPeer({ remote: far, local: near }), null);
  });

  const missing = Deno.uid() !== 0
    ? "switching to another user needs root"
    : await missingTool(["setpriv", "bash"]);
  if (missing) {
    skipTest("TcpOwners reports another user's socket as theirs", missing);
  } else {
    Deno.test("TcpOwners reports another user's socket as theirs; admitLocalPeer refuses it", async () => {
      const NOBODY = 65534;
      using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const child = new Deno.Command("setpriv", {
        args: [
          `--reuid=${NOBODY}`,
          `--regid=${NOBODY}`,
          "--clear-groups",
          "bash",
          "-c",
          `exec 3<>/dev/tcp/127.0.0.1/${listener.addr.port}; read -t 20 <&3`,
        ],
        stdin: "null",
      }).spawn();
      try {
        using conn = await listener.accept();
        const end = { remote: conn.remoteAddr, local: conn.localAddr };
        for (const mode of MODES) {
          assertEquals(await new TcpOwners(mode).owner(end), NOBODY, label(mode));
        }
        const no = await admitLocalPeer(end);
        assertEquals(no?.code, "auth", "refused");
        assert(/accepts only its own user/.test(no!.message), no!.message);
      } finally {
        child.kill();
        await child.status;
      }
    });
  }

  Deno.test("TcpOwners: the cost of a lookup with about 2000 connections open", async () => {
    // Each connection holds two descriptors here; stay well inside this process's limit.
    const limits = await Deno.readTextFile("/proc/self/limits");
    const soft = Number(/Max open files\s+(\d+)/.exec(limits)?.[1] ?? 1024);
    using pairs = await Pairs.open(Math.max(50, Math.min(2000, (soft - 256) >> 1)), "127.0.0.1");
    const sample = pairs.ends.slice(0, 200);
    const lines = [`${pairs.accepted.length} connections open`];
    for (const mode of MODES) {
      const owners = new TcpOwners(mode);
      await owners.owner(sample[0]); // the kernel socket is opened on first use
      let t0 = performance.now();
      for (const e of sample.slice(0, 20)) assertEquals(await owners.owner(e), Deno.uid());
      const one = (performance.now() - t0) / 20;
      t0 = performance.now();
      const uids = await Promise.all(sample.map((e) => owners.owner(e)));
      const burst = performance.now() - t0;
      assertEquals(uids.filter((u) => u === Deno.uid()).length, sample.length, label(mode));
      const s = owners.stats;
      lines.push(
        `${label(mode)}: ${(one * 1000).toFixed(0)} µs per lookup one at a time; ` +
          `${sample.length} at once in ${burst.toFixed(1)} ms ` +
          `(${(burst / sample.length * 1000).toFixed(0)} µs each); ${s.reads} reads, ` +
          `${s.queries} kernel queries for ${s.lookups} lookups`,
      );
    }
    console.log(lines.join("\n"));
  });

  Deno.test("a keyless server takes 200 connections of its own user, many handshakes at once", async () => {
    await using s = await Server.start();
    const url = parseUrl(s.url);
    // Stay under the server's cap on unfinished handshakes from one address.
    const wave = MAX_PREAUTH_PER_ADDRESS - 2;
    const conns: Connection[] = [];
    const t0 = performance.now();
    try {
      while (conns.length < 200) {
        const n = Math.min(wave, 200 - conns.length);
        const dials = Array.from({ length: n }, () => dial(url, { role: "client" }));
        const settled = await Promise.allSettled(dials);
        for (const r of settled) if (r.status === "fulfilled") conns.push(r.value);
        const failed = settled.find((r) => r.status === "rejected");
        if (failed) throw (failed as PromiseRejectedResult).reason;
      }
      const ms = performance.now() - t0;
      console.log(`200 keyless handshakes, ${wave} at a time, in ${ms.toFixed(0)} ms`);
      assert(ms < 20_000, `200 keyless handshakes took ${ms.toFixed(0)} ms`);
    } finally {
      for (const c of conns) c.close();
      await Promise.all(conns.map((c) => c.closed));
    }
  });
}
