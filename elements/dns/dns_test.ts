import { CircuitError } from "../../net/errors.ts";
import { parseDnsAddr } from "./dns.ts";
import { eq } from "./_testing.ts";

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
  for (const [raw, want] of cases) eq(parseDnsAddr(raw), want, String(raw));
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
