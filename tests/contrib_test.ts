/**
 * The service files in contrib/ are valid for the tools that read them:
 * `systemd-analyze verify` for the systemd unit (Debian `systemd`) and
 * `cloud-init schema --config-file` for the cloud-init user-data (Debian `cloud-init`).
 * Each check is also run once on a broken copy, so a checker that accepts anything fails
 * the test instead of passing it.
 *
 * @module
 */

import { DEFAULT_SCRUB_GRACE_MS } from "../server/config.ts";
import { assert, assertEquals, missingTool, skipTest, TempDir } from "./_harness.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const UNIT = `${ROOT}contrib/systemd/circuit.service`;
const USER_DATA = `${ROOT}contrib/cloud-init/user-data.yaml`;
/** Where Debian keeps systemd's own units, which `verify` needs (sysinit.target…). */
const SYSTEM_UNITS = "/usr/lib/systemd/system";

interface Run {
  code: number;
  out: string;
}

async function run(cmd: string, args: string[]): Promise<Run> {
  const o = await new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { SYSTEMD_LOG_COLOR: "0", NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: o.code, out: (dec.decode(o.stdout) + dec.decode(o.stderr)).trim() };
}

/** `KEY=VALUE` lines of one unit-file section (later lines win). */
function section(text: string, name: string): Map<string, string> {
  const m = new Map<string, string>();
  let inside = false;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("[")) inside = line === `[${name}]`;
    else if (inside && line && !line.startsWith("#")) {
      const eq = line.indexOf("=");
      m.set(line.slice(0, eq), line.slice(eq + 1));
    }
  }
  return m;
}

/** Seconds of a systemd time span such as `20s`, `1min 30s` or `90`. */
function seconds(span: string): number {
  let total = 0;
  for (const [, n, unit] of span.matchAll(/(\d+)\s*(ms|s|sec|min|m|h)?/g)) {
    const k = { ms: 0.001, s: 1, sec: 1, min: 60, m: 60, h: 3600 }[unit ?? "s"] ?? 1;
    total += Number(n) * k;
  }
  return total;
}

/**
 * `systemd-analyze verify` against a root made for it: the unit, systemd's own units, and
 * an executable at the unit's ExecStart path (verify checks it exists), so nothing on this
 * host is read or written beyond the tool itself.
 */
async function verifyUnit(unitText: string): Promise<Run> {
  using tmp = new TempDir();
  const r = tmp.path;
  await Deno.mkdir(`${r}/etc/systemd/system`, { recursive: true });
  await Deno.mkdir(`${r}/usr/local/bin`, { recursive: true });
  await Deno.mkdir(`${r}/usr/lib/systemd`, { recursive: true });
  const cp = await run("cp", ["-a", SYSTEM_UNITS, `${r}/usr/lib/systemd/`]);
  assert(cp.code === 0, `copying ${SYSTEM_UNITS}: ${cp.out}`);
  await Deno.writeTextFile(`${r}/usr/local/bin/circuit`, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
  await Deno.chmod(`${r}/usr/local/bin/circuit`, 0o755);
  await Deno.writeTextFile(`${r}/etc/systemd/system/circuit.service`, unitText);
  return await run("systemd-analyze", [`--root=${r}`, "verify", "circuit.service"]);
}

const SYSTEMD = "contrib: systemd-analyze verify accepts contrib/systemd/circuit.service";
const systemdMissing = (await missingTool(["systemd-analyze"])) ??
  ((await Deno.stat(SYSTEM_UNITS).catch(() => null))?.isDirectory
    ? null
    : `${SYSTEM_UNITS} is missing (Debian package systemd)`);
if (systemdMissing) {
  skipTest(SYSTEMD, `${systemdMissing} (Debian package systemd)`);
} else {
  Deno.test(SYSTEMD, async () => {
    const text = await Deno.readTextFile(UNIT);
    const ok = await verifyUnit(text);
    assert(ok.code === 0 && ok.out === "", `verify said (exit ${ok.code}): ${ok.out}`);
    const broken = await verifyUnit(text.replace("KillMode=mixed", "KillMode=bogus"));
    assert(/kill mode/i.test(broken.out), `verify missed a bad KillMode: ${broken.out}`);

    const unit = section(text, "Unit"), svc = section(text, "Service");
    assertEquals(svc.get("Restart"), "always", "Restart");
    assertEquals(svc.get("StateDirectory"), "circuit", "StateDirectory");
    assertEquals(svc.get("EnvironmentFile"), "/etc/circuit/circuit.env", "EnvironmentFile");
    assert(/ start --var %S\/circuit /.test(svc.get("ExecStart") ?? ""), "--var is the state dir");
    assertEquals(svc.get("KillMode"), "mixed", "KillMode: SIGTERM to the server first");
    const stop = seconds(svc.get("TimeoutStopSec") ?? "0");
    assert(
      stop * 1000 > 2 * DEFAULT_SCRUB_GRACE_MS,
      `TimeoutStopSec ${stop}s is not well above the scrub grace`,
    );
    assertEquals(unit.get("StartLimitIntervalSec"), "0", "restarts are never rate-limited");
  });
}

const CLOUD = "contrib: cloud-init schema accepts contrib/cloud-init/user-data.yaml";
const cloudMissing = await missingTool(["cloud-init"]);
if (cloudMissing) {
  skipTest(CLOUD, `${cloudMissing} (Debian package cloud-init)`);
} else {
  Deno.test(CLOUD, async () => {
    const ok = await run("cloud-init", ["schema", "--config-file", USER_DATA]);
    assert(ok.code === 0 && /^Valid cloud-config/.test(ok.out), `schema said: ${ok.out}`);
    using tmp = new TempDir();
    const text = await Deno.readTextFile(USER_DATA);
    const bad = `${tmp.path}/bad.yaml`;
    await Deno.writeTextFile(bad, text.replace('permissions: "0600"', "permissions: 384"));
    const broken = await run("cloud-init", ["schema", "--config-file", bad]);
    assert(broken.code !== 0, `schema missed a bad permissions value: ${broken.out}`);

    // The unit it writes is contrib/systemd/circuit.service, verbatim.
    const lines = text.split("\n");
    const at = lines.findIndex((l) => l.trim() === "- path: /etc/systemd/system/circuit.service");
    assert(at >= 0, "user-data writes no /etc/systemd/system/circuit.service");
    const start = lines.findIndex((l, i) => i > at && l.trim() === "content: |") + 1;
    const body: string[] = [];
    for (const l of lines.slice(start)) {
      if (l !== "" && !l.startsWith("      ")) break;
      body.push(l.slice(6));
    }
    const embedded = body.join("\n").trimEnd() + "\n";
    assertEquals(embedded, await Deno.readTextFile(UNIT), "the embedded unit");
    for (const want of ["CIRCUIT_HMAC=/etc/circuit/circuit.key", "CIRCUIT_DISCOVER="]) {
      assert(text.includes(want), `user-data does not set ${want}`);
    }
    assert(/systemctl enable --now circuit/.test(text), "user-data does not enable the unit");
    assert(/sha256sum -c/.test(text), "user-data does not check the binary's SHA-256");
  });
}
