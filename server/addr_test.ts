import { planBind } from "./addr.ts";
import { CircuitError } from "../net/errors.ts";
import { assertEquals } from "../tests/_assert.ts";

const IFACES = [
  { name: "lo", family: "IPv4" as const, address: "127.0.0.1" },
  { name: "eth0", family: "IPv4" as const, address: "10.1.2.3" },
];
const base = { keyed: false, insecure: false, interfaces: IFACES, defaultIface: "eth0" };

function refusal(addr: string): string {
  try {
    planBind({ ...base, addr });
  } catch (err) {
    if (err instanceof CircuitError && err.code === "bad request") return err.message;
    throw err;
  }
  throw new Error(`${addr} was accepted without a key`);
}

Deno.test("planBind() without a key reads the host as an address: a name that looks loopback is refused", () => {
  for (
    const addr of ["127.evil.test:0", "127.0.0.1.nip.io:7000", "localhost.evil:0", "0.0.0.0:0"]
  ) {
    const host = addr.slice(0, addr.lastIndexOf(":"));
    assertEquals(
      refusal(addr),
      `Refusing to serve ${host} without a key: pass --hmac KEYFILE (make one with circuit keygen), or --insecure`,
    );
  }
});

Deno.test("planBind() without a key binds loopback addresses, and localhost as 127.0.0.1", () => {
  assertEquals(planBind({ ...base }), { hostname: "127.0.0.1", port: 0, advertise: "127.0.0.1" });
  assertEquals(planBind({ ...base, addr: "127.0.0.5:7000" }), {
    hostname: "127.0.0.5",
    port: 7000,
    advertise: "127.0.0.5",
  });
  assertEquals(planBind({ ...base, addr: "[::1]:0" }), {
    hostname: "::1",
    port: 0,
    advertise: "::1",
  });
  assertEquals(planBind({ ...base, addr: "localhost:0" }), {
    hostname: "127.0.0.1",
    port: 0,
    advertise: "127.0.0.1",
  });
});

Deno.test("planBind() with a key or --insecure binds any host, names included", () => {
  for (const flags of [{ keyed: true }, { insecure: true }]) {
    assertEquals(planBind({ ...base, ...flags, addr: "127.evil.test:0" }), {
      hostname: "127.evil.test",
      port: 0,
      advertise: "127.evil.test",
    });
  }
});
