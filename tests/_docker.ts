/**
 * A real, private Docker engine for the tests: `dockerd` on its own socket, data root
 * and exec root (no bridge, no iptables), with a busybox rootfs imported as the local
 * image `busybox` (no registry is reachable). dockerd is started through `sh` so no
 * Deno resource outlives the test that starts it; `stop()` ends it.
 *
 * @module
 */

/** A running engine. */
export interface TestEngine {
  /** DOCKER_HOST for servers and the docker CLI. */
  host: string;
  /** Stop dockerd (when we started it) and remove its files. */
  stop(): Promise<void>;
  /**
   * Stop dockerd, run `during` while the engine is down, then start it again on the same
   * data (images and containers kept). Absent for an engine the tests did not start.
   */
  downFor?<T>(during: () => Promise<T>): Promise<T>;
}

async function which(cmd: string): Promise<boolean> {
  const r = await new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
    .output();
  return r.success;
}

async function sh(script: string, env: Record<string, string> = {}): Promise<string> {
  const r = await new Deno.Command("sh", { args: ["-c", script], env, stderr: "piped" }).output();
  if (!r.success) {
    throw new Error(
      `${script.split("\n")[0]} failed: ${new TextDecoder().decode(r.stderr).trim()}`,
    );
  }
  return new TextDecoder().decode(r.stdout).trim();
}

async function answers(host: string): Promise<boolean> {
  const r = await new Deno.Command("docker", {
    args: ["version", "--format", "{{.Server.Version}}"],
    env: { DOCKER_HOST: host },
    stdout: "null",
    stderr: "null",
  }).output().catch(() => ({ success: false }));
  return r.success;
}

/**
 * Get an engine, or the reason there is none.
 *
 * @returns the engine, or `{ skip }` naming what is missing
 */
export async function testEngine(): Promise<TestEngine | { skip: string }> {
  const given = Deno.env.get("CIRCUIT_TEST_DOCKER_HOST");
  if (given) {
    if (!(await answers(given))) {
      return { skip: `CIRCUIT_TEST_DOCKER_HOST=${given} does not answer` };
    }
    return { host: given, stop: () => Promise.resolve() };
  }
  if (Deno.uid() !== 0) return { skip: "starting a private dockerd needs root" };
  for (const tool of ["dockerd", "docker", "busybox"]) {
    if (!(await which(tool))) {
      return { skip: `${tool} is not installed (apt-get install docker.io busybox-static)` };
    }
  }
  const dir = `/tmp/cdk-${crypto.randomUUID().slice(0, 8)}`;
  const host = `unix://${dir}/docker.sock`;
  const launch = () =>
    sh(
      `mkdir -p ${dir} && dockerd --host ${host} --data-root ${dir}/data --exec-root ${dir}/exec ` +
        `--pidfile ${dir}/docker.pid --bridge none --iptables=false --ip6tables=false ` +
        `>>${dir}/dockerd.log 2>&1 </dev/null & echo $!`,
    );
  let pid = await launch();
  // Backstop for runs that filter out the test that stops the engine.
  globalThis.addEventListener("unload", () => {
    try {
      Deno.kill(Number(pid), "SIGTERM");
    } catch { /* gone */ }
  });
  const halt = async () => {
    try {
      Deno.kill(Number(pid), "SIGTERM");
    } catch { /* gone */ }
    for (let i = 0; i < 100; i++) {
      try {
        Deno.statSync(`/proc/${pid}`);
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = async () => {
    await halt();
    await sh(`rm -rf ${dir} 2>/dev/null; true`);
  };
  const up = async () => {
    for (let i = 0; i < 150 && !(await answers(host)); i++) {
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const downFor = async <T>(during: () => Promise<T>): Promise<T> => {
    await halt();
    try {
      return await during();
    } finally {
      pid = await launch();
      await up();
    }
  };
  await up();
  if (!(await answers(host))) {
    const log = await sh(`tail -5 ${dir}/dockerd.log`).catch(() => "");
    await stop();
    return { skip: `dockerd did not start: ${log}` };
  }
  await sh(
    `set -e; r=${dir}/rootfs; mkdir -p $r/bin $r/tmp; cp "$(command -v busybox)" $r/bin/busybox; ` +
      `for c in sh echo cat sleep env pwd true false ls; do ln -sf busybox $r/bin/$c; done; ` +
      `tar -C $r -c . | docker import - busybox:latest >/dev/null`,
    { DOCKER_HOST: host },
  );
  return { host, stop, downFor };
}
