import { CircuitError } from "../../net/errors.ts";
import { loopbackDnsAddr, parseDnsAddr } from "./dns.ts";
import { assertEquals } from "./_testing.ts";

Deno.test("parseDnsAddr() reads HOST:PORT, :PORT, HOST and nothing (any interface, any port)", () => {
  const cases: Array<[unknown, { hostname: string; port: number }]> = [
    [undefined, { hostname: "0.0.0.0", port: 0 }],
    ["", { hostname: "0.0.0.0", port: 0 }],
    ["127.0.0.1:5353", { hostname: "127.0.0.1", port: 5353 }],
    [":53", { hostname: "0.0.0.0", port: 53 }],
    ["0.0.0.0:53", { hostname: "0.0.0.0", port: 53 }],
    ["127.0.0.1", { hostname: "127.0.0.1", port: 0 }],
    ["[::1]:53", { hostname: "::1", port: 53 }],
    ["[::]:53", { hostname: "::", port: 53 }],
    ["::1", { hostname: "::1", port: 0 }],
  ];
  for (const [raw, want] of cases) assertEquals(parseDnsAddr(raw), want, String(raw));
});

Deno.test("parseDnsAddr() rejects what is not an address with a bad request", () => {
  for (const raw of ["a:b", "1.2.3.4:99999", "h:1:2x", 42, "[::1"]) {
    try {
      parseDnsAddr(raw);
      throw new Error(`accepted ${raw}`);
    } catch (err) {
      if (!(err instanceof CircuitError) || err.code !== "bad request") throw err;
    }
  }
});

Deno.test("loopbackDnsAddr() keeps a loopback-only server's nameservers on loopback", () => {
  const cases: Array<[unknown, string, string]> = [
    [undefined, "127.0.0.1", "127.0.0.1:0"],
    [":5353", "127.0.0.1", "127.0.0.1:5353"],
    ["", "localhost", "127.0.0.1:0"],
    [":53", "::1", "[::1]:53"],
    ["127.0.0.9:53", "127.0.0.1", "127.0.0.9:53"],
    ["localhost:53", "127.0.0.1", "127.0.0.1:53"],
    ["[::1]:53", "127.0.0.1", "[::1]:53"],
  ];
  for (const [raw, server, want] of cases) {
    assertEquals(loopbackDnsAddr(raw, server), want, String(raw));
  }
  for (const raw of ["0.0.0.0:53", "[::]:53", "10.0.0.1:53", "127.evil.test:53", "0.0.0.0"]) {
    try {
      loopbackDnsAddr(raw, "127.0.0.1");
      throw new Error(`accepted ${raw}`);
    } catch (err) {
      if (!(err instanceof CircuitError) || err.code !== "bad request") throw err;
      if (!/^Refusing to serve DNS on \S+: this server serves loopback only/.test(err.message)) {
        throw err;
      }
    }
  }
});
