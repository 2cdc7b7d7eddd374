/**
 * The container run: the original's JSON (keys case-insensitive, unknown keys ignored),
 * validated and mapped to the Engine API's create body.
 *
 * | JSON        | Engine API                    | docker run       |
 * | ----------- | ----------------------------- | ---------------- |
 * | `Image`     | `Image`                       | IMAGE            |
 * | `Memory`    | `HostConfig.Memory` (bytes)   | `--memory`       |
 * | `CpuShares` | `HostConfig.CpuShares`        | `--cpu-shares`   |
 * | `Lxc`       | rejected unless empty: LXC options left Docker in 1.10 |  |
 * | `Volume`    | `HostConfig.Binds`            | `-v src:dst[:ro]`|
 * | `Dir`       | `WorkingDir`                  | `-w`             |
 * | `Entry`     | `Entrypoint`                  | `--entrypoint`   |
 * | `Env`       | `Env`                         | `-e`             |
 * | `Path`, `Args` | `Cmd`                      | COMMAND ARGS     |
 * | `Scrub`     | remove the element after exit |                  |
 *
 * @module
 */

import { CircuitError } from "../../net/errors.ts";

/** A container run, as `mkdkr` reads it. */
export interface DockerRun {
  /** Image name. */
  Image: string;
  /** Memory limit in bytes; 0 for none. */
  Memory: number;
  /** Relative CPU weight; 0 for the default. */
  CpuShares: number;
  /** LXC options (must be empty). */
  Lxc: string[] | null;
  /** Bind mounts `src:dst[:ro|rw]`. */
  Volume: string[] | null;
  /** Working directory in the container. */
  Dir: string;
  /** Entrypoint override. */
  Entry: string;
  /** `K=V` entries. */
  Env: string[] | null;
  /** The program. */
  Path: string;
  /** Its arguments. */
  Args: string[] | null;
  /** Remove the element once the container has exited. */
  Scrub: boolean;
}

function bad(why: string): CircuitError {
  return new CircuitError("bad request", `command json not parsing: ${why}`);
}

function strings(v: unknown, key: string): string[] | null {
  if (v === null || v === undefined) return null;
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) {
    throw bad(`"${key}" must be a list of strings`);
  }
  return v;
}

function num(v: unknown, key: string): number {
  if (v === null || v === undefined) return 0;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw bad(`"${key}" must be a non-negative integer`);
  }
  return v;
}

function str(v: unknown, key: string): string {
  if (v === null || v === undefined) return "";
  if (typeof v !== "string") throw bad(`"${key}" must be a string`);
  return v;
}

const VOLUME_RE = /^(\/[^:]*):(\/[^:]*)(?::(ro|rw))?$/;

/**
 * Validate a run object.
 *
 * @param raw parsed JSON
 * @returns the run
 * @throws {CircuitError} `bad request` naming the field
 */
export function parseRun(raw: unknown): DockerRun {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw bad("expected an object");
  const k = new Map<string, unknown>();
  for (const [key, v] of Object.entries(raw)) k.set(key.toLowerCase(), v);
  const image = str(k.get("image"), "Image");
  if (!image) throw bad(`"Image" is required`);
  const lxc = strings(k.get("lxc"), "Lxc");
  if (lxc && lxc.length > 0) {
    throw new CircuitError(
      "bad request",
      `Lxc options are not supported: Docker removed the LXC driver in 1.10 (got ${
        JSON.stringify(lxc)
      })`,
    );
  }
  const volume = strings(k.get("volume"), "Volume");
  for (const v of volume ?? []) {
    if (!VOLUME_RE.test(v)) {
      throw new CircuitError(
        "bad request",
        `Bad volume "${v}": expected /host/path:/container/path with an optional :ro or :rw`,
      );
    }
  }
  const env = strings(k.get("env"), "Env");
  for (const e of env ?? []) if (!e.includes("=")) throw bad(`Env entry "${e}" is not K=V`);
  const scrub = k.get("scrub") ?? false;
  if (typeof scrub !== "boolean") throw bad(`"Scrub" must be true or false`);
  return {
    Image: image,
    Memory: num(k.get("memory"), "Memory"),
    CpuShares: num(k.get("cpushares"), "CpuShares"),
    Lxc: lxc,
    Volume: volume,
    Dir: str(k.get("dir"), "Dir"),
    Entry: str(k.get("entry"), "Entry"),
    Env: env,
    Path: str(k.get("path"), "Path"),
    Args: strings(k.get("args"), "Args"),
    Scrub: scrub,
  };
}

/**
 * The Engine API create body for a run.
 *
 * @param run the run
 * @param labels labels that let a restarted server find its containers
 * @returns the body for `POST /containers/create`
 */
export function createBody(
  run: DockerRun,
  labels: Record<string, string>,
): Record<string, unknown> {
  const cmd = run.Path ? [run.Path, ...(run.Args ?? [])] : run.Args ?? undefined;
  return {
    Image: run.Image,
    ...(cmd && cmd.length ? { Cmd: cmd } : {}),
    ...(run.Entry ? { Entrypoint: [run.Entry] } : {}),
    ...(run.Env ? { Env: run.Env } : {}),
    ...(run.Dir ? { WorkingDir: run.Dir } : {}),
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    OpenStdin: true,
    StdinOnce: true,
    Tty: false,
    Labels: labels,
    HostConfig: {
      // docker-init as PID 1 forwards signals to the program (PID 1 ignores TERM otherwise).
      Init: true,
      ...(run.Memory ? { Memory: run.Memory } : {}),
      ...(run.CpuShares ? { CpuShares: run.CpuShares } : {}),
      ...(run.Volume ? { Binds: run.Volume } : {}),
    },
  };
}
