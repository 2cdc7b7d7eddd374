/**
 * A keyless server reads its bind host as an address, never as a name: a name that
 * looks like loopback (`127.evil.test`) but resolves to another interface is refused.
 * The name is mapped in a network namespace's own hosts file (`/etc/netns/NS/hosts`,
 * which `ip netns exec` mounts over `/etc/hosts` for that command only; the host's
 * `/etc/hosts` is never touched). Needs root and iproute2; otherwise SKIPPED with the
 * reason (a failure under CI=true).
 */

import { assert, assertEquals, missingTool, Server, skipTest } from "./_harness.ts";
import { Lan, netnsUnavailable } from "./_netns.ts";

const why = await netnsUnavailable() ?? await missingTool(["getent"]);

if (why) {
  skipTest("keyless bind by name", why);
} else {
  Deno.test("start -a 127.evil.test:0 without a key is refused when the name resolves off loopback", async () => {
    await using lan = await Lan.create(1);
    const h = lan.hosts[0];
    const dir = `/etc/netns/${h.ns}`;
    await Deno.mkdir(dir, { recursive: true });
    try {
      await Deno.writeTextFile(`${dir}/hosts`, `127.0.0.1 localhost\n${h.addr} 127.evil.test\n`);
      const got = await new Deno.Command(h.prefix[0], {
        args: [...h.prefix.slice(1), "getent", "hosts", "127.evil.test"],
        stdout: "piped",
      }).output();
      const resolved = new TextDecoder().decode(got.stdout).trim().split(/\s+/)[0];
      assertEquals(resolved, h.addr, "inside the namespace the name resolves to its interface");
      let started: Server | undefined;
      let refusal = "";
      try {
        started = await Server.start({ prefix: h.prefix, args: ["-a", "127.evil.test:0"] });
      } catch (err) {
        refusal = (err as Error).message;
      }
      if (started) {
        await started[Symbol.asyncDispose]();
        throw new Error(`a keyless server started on ${started.url}`);
      }
      assert(
        refusal.endsWith(
          "Refusing to serve 127.evil.test without a key: pass --hmac KEYFILE (make one with circuit keygen), or --insecure",
        ),
        refusal,
      );
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove("/etc/netns").catch(() => {}); // only when no other test uses it
    }
  });
}
