/**
 * Peers for the benchmark, each a private instance on loopback in a temp directory and
 * stopped with the rest by `stopAll`: an OpenSSH server with its own host key, config and
 * authorized client key; redis-server without persistence; a one-member etcd (nsd is
 * started by the DNS section, serf by the membership section in its namespaces).
 * Each is a {@linkcode Peer}; each `start*` throws with a reason when its program is
 * missing or fails to start, and {@linkcode startPeer} records the peer as skipped.
 *
 * @module
 */

import { canRun, run, type Service, spawnDaemon } from "./_cluster.ts";
import type { SectionContext } from "./_context.ts";
import { Resp } from "./_resp.ts";

/** What every peer on loopback is: a daemon on a port. */
export interface Peer {
  /** The daemon (stopped with the rest by `stopAll`). */
  svc: Service;
  /** The loopback port it serves clients on. */
  port: number;
}

/** The figure {@linkcode startPeer} records when a peer cannot be set up. */
export interface SkippedFigure {
  /** The section's title. */
  section: string;
  /** The figure's name; ` (skipped)` is appended. */
  name: string;
  /** Its unit. Default none. */
  unit?: string;
  /** Appended to the note `skipped: REASON`. */
  suffix?: string;
}

/**
 * Start a peer, or record why not as a null figure and return null.
 *
 * @param ctx the run's context
 * @param skipped the figure that says it was skipped
 * @param start starts the peer; throws with the reason
 * @returns the peer, or null when skipped
 */
export async function startPeer<T extends Peer>(
  ctx: SectionContext,
  skipped: SkippedFigure,
  start: () => Promise<T>,
): Promise<T | null> {
  try {
    return await start();
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    ctx.add({
      section: skipped.section,
      name: `${skipped.name} (skipped)`,
      value: null,
      unit: skipped.unit ?? "",
      notes: `skipped: ${why}${skipped.suffix ?? ""}`,
    });
    return null;
  }
}

/** Directories outside the run's temp dir (tmpfs), removed by {@linkcode removeScratch}. */
const scratch = new Set<string>();

/**
 * A fresh directory on tmpfs (/dev/shm) when there is one, else under `fallback`;
 * removed by {@linkcode removeScratch}, also on Ctrl-C.
 *
 * @param fallback a directory inside the run's temp dir
 * @returns the directory and whether it is on tmpfs
 */
export async function scratchDir(fallback: string): Promise<{ dir: string; tmpfs: boolean }> {
  const shm = await Deno.stat("/dev/shm").then((s) => s.isDirectory, () => false);
  if (!shm) {
    await Deno.mkdir(fallback, { recursive: true });
    return { dir: fallback, tmpfs: false };
  }
  const dir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "circuit-bench-" });
  scratch.add(dir);
  return { dir, tmpfs: true };
}

/** Remove every directory {@linkcode scratchDir} made. */
export function removeScratch(): void {
  for (const d of scratch) {
    try {
      Deno.removeSync(d, { recursive: true });
    } catch { /* gone */ }
    scratch.delete(d);
  }
}

/** A loopback port nothing listens on now (the kernel's pick, released at once). */
export function sparePort(preferred?: number): number {
  if (preferred) {
    try {
      Deno.listen({ hostname: "127.0.0.1", port: preferred }).close();
      return preferred;
    } catch { /* taken */ }
  }
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function accepts(port: number): Promise<boolean> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    c.close();
    return true;
  } catch {
    return false;
  }
}

/** A private sshd and the `ssh` argv that logs in to it as root with a fresh key. */
export interface SshPeer extends Peer {
  /** `ssh -p … -i … root@127.0.0.1` without the remote command. */
  argv: string[];
  /** Same, through a ControlMaster connection opened once (multiplexed sessions). */
  muxArgv: string[];
  /** Close the master connection. */
  closeMaster(): Promise<void>;
}

/**
 * Start sshd on a spare loopback port with a config, host key and authorized key in
 * `dir`, and check that key login runs a command.
 *
 * The login shell of root is bash, which sources ~/.bashrc when started by sshd; the
 * client sends `SHLVL=1` (accepted by this private config only) so bash skips it, and
 * the figures measure ssh rather than whatever ~/.bashrc runs.
 *
 * @param dir a fresh directory (mode 0700)
 * @returns the peer
 * @throws {Error} with the reason when it cannot be set up
 */
export async function startSshd(dir: string): Promise<SshPeer> {
  if (!await exists("/usr/sbin/sshd")) throw new Error("openssh-server is not installed");
  if (!await canRun("ssh", ["-V"])) throw new Error("the ssh client is not installed");
  if (Deno.uid?.() !== 0) throw new Error("not root: cannot log in as root");
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  for (const k of ["host_key", "client_key"]) {
    const r = await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", `${dir}/${k}`]);
    if (r.code !== 0) throw new Error(`ssh-keygen failed: ${r.stderr.trim()}`);
  }
  await Deno.copyFile(`${dir}/client_key.pub`, `${dir}/authorized_keys`);
  await Deno.chmod(`${dir}/authorized_keys`, 0o600);
  const port = sparePort(2222);
  await Deno.writeTextFile(
    `${dir}/sshd_config`,
    [
      `ListenAddress 127.0.0.1:${port}`,
      `HostKey ${dir}/host_key`,
      `PidFile ${dir}/sshd.pid`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      "PrintMotd no",
      "PrintLastLog no",
      "UseDNS no",
      "AcceptEnv SHLVL",
      "MaxSessions 64",
      "MaxStartups 64:30:128",
      "",
    ].join("\n"),
  );
  await Deno.mkdir("/run/sshd", { recursive: true }); // privilege separation directory
  const t = await run("/usr/sbin/sshd", ["-t", "-f", `${dir}/sshd_config`]);
  if (t.code !== 0) throw new Error(`sshd -t: ${t.stderr.trim()}`);
  const svc = await spawnDaemon(
    { cmd: "/usr/sbin/sshd", args: ["-D", "-e", "-f", `${dir}/sshd_config`] },
    () => accepts(port),
  );
  const argv = [
    "ssh",
    "-p",
    String(port),
    "-i",
    `${dir}/client_key`,
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "SetEnv=SHLVL=1",
    "root@127.0.0.1",
  ];
  const probe = await run(argv[0], [...argv.slice(1), "/bin/true"]);
  if (probe.code !== 0) {
    await svc.stop();
    throw new Error(`key login failed: ${probe.stderr.trim().split("\n").pop()}`);
  }
  const cp = `${dir}/cm`;
  const muxArgv = [...argv.slice(0, -1), "-o", `ControlPath=${cp}`, argv[argv.length - 1]];
  const master = await run(argv[0], [
    ...argv.slice(1, -1),
    "-o",
    "ControlMaster=yes",
    "-o",
    `ControlPath=${cp}`,
    "-o",
    "ControlPersist=600",
    argv[argv.length - 1],
    "/bin/true",
  ]);
  if (master.code !== 0) throw new Error(`ssh ControlMaster failed: ${master.stderr.trim()}`);
  return {
    svc,
    port,
    argv,
    muxArgv,
    async closeMaster() {
      await run(muxArgv[0], [...muxArgv.slice(1, -1), "-O", "exit", muxArgv[muxArgv.length - 1]])
        .catch(() => {});
    },
  };
}

/** A private redis-server. */
export interface RedisPeer extends Peer {
  /** `redis-server --version`. */
  version: string;
}

/**
 * Start redis-server on a spare loopback port, no persistence, working dir `dir`.
 *
 * @param dir a fresh directory
 * @returns the peer
 * @throws {Error} with the reason when it cannot be set up
 */
export async function startRedis(dir: string): Promise<RedisPeer> {
  const v = await run("redis-server", ["--version"]).catch(() => null);
  if (!v || v.code !== 0) throw new Error("redis-server is not installed");
  await Deno.mkdir(dir, { recursive: true });
  const port = sparePort();
  const svc = await spawnDaemon(
    {
      cmd: "redis-server",
      args: [
        "--bind",
        "127.0.0.1",
        "--port",
        String(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
      ],
    },
    async () => {
      if (!await accepts(port)) return false;
      const r = await Resp.connect(port);
      try {
        return (await r.call("PING")) === "PONG";
      } finally {
        r.close();
      }
    },
  );
  return { svc, port, version: /v=(\S+)/.exec(v.stdout)?.[1] ?? v.stdout.trim() };
}

/** A private one-member etcd. */
export interface EtcdPeer extends Peer {
  /** `http://127.0.0.1:PORT` of its client API (gRPC and the HTTP/JSON gateway). */
  endpoint: string;
  /** `etcd --version`'s first line. */
  version: string;
  /** Where its data lives. */
  dataDir: string;
}

/**
 * Start etcd with client and peer ports on loopback and a data dir in `dir`.
 *
 * @param dir a fresh directory (on tmpfs when the caller wants no disk in the way)
 * @returns the peer
 * @throws {Error} with the reason when it cannot be set up
 */
export async function startEtcd(dir: string): Promise<EtcdPeer> {
  const v = await run("etcd", ["--version"]).catch(() => null);
  if (!v || v.code !== 0) throw new Error("etcd is not installed");
  await Deno.mkdir(dir, { recursive: true });
  const client = sparePort(), peer = sparePort();
  const endpoint = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const svc = await spawnDaemon(
    {
      cmd: "etcd",
      args: [
        "--name",
        "bench",
        "--data-dir",
        `${dir}/data`,
        "--listen-client-urls",
        endpoint,
        "--advertise-client-urls",
        endpoint,
        "--listen-peer-urls",
        peerUrl,
        "--initial-advertise-peer-urls",
        peerUrl,
        "--initial-cluster",
        `bench=${peerUrl}`,
        "--log-level",
        "error",
        "--logger",
        "zap",
      ],
    },
    async () => {
      const r = await fetch(`${endpoint}/health`).catch(() => null);
      if (!r) return false;
      const body = await r.text();
      return r.ok && body.includes("true");
    },
    30_000,
  );
  return {
    svc,
    port: client,
    endpoint,
    version: v.stdout.split("\n")[0].trim(),
    dataDir: `${dir}/data`,
  };
}
