/**
 * The docker kind on the wire. A container serves the operations of a process
 * (`ProcOp` in `proc.ts`: `wait`, `signal`, `stdin`, `stdout`, `stderr`); `wait` and
 * `peek` reply the engine's `docker inspect` object.
 *
 * @module
 */

/** The kind name `make` and `ls -l` use for containers. */
export const DOCKER_KIND = "docker";

/** A container run; keys as in the CLI's JSON (`mkdkr`). */
export interface ContainerRun {
  /** Image name (must be present on the engine; nothing is pulled). */
  Image: string;
  /** Memory limit in bytes. */
  Memory?: number;
  /** Relative CPU weight. */
  CpuShares?: number;
  /** LXC options: must be empty (Docker removed the LXC driver). */
  Lxc?: string[];
  /** Bind mounts, `/host:/container[:ro|rw]`. */
  Volume?: string[];
  /** Working directory in the container. */
  Dir?: string;
  /** Entrypoint override. */
  Entry?: string;
  /** `K=V` entries. */
  Env?: string[];
  /** The program. */
  Path?: string;
  /** Its arguments. */
  Args?: string[];
  /** Remove the element once the container has exited. */
  Scrub?: boolean;
}

/** What `make` takes for a container (keys of `run` matched case-insensitively). */
export interface DockerSpec {
  /** The run. */
  run: ContainerRun;
}

/** A container's state: the engine's `docker inspect` object. */
export interface ContainerState {
  /** Container id. */
  Id: string;
  /** Container name, `/circuit-X…-…`. */
  Name: string;
  /** Run state. */
  State: {
    Status: string;
    Running: boolean;
    ExitCode: number;
    Error: string;
    [key: string]: unknown;
  };
  /** Everything else `docker inspect` shows. */
  [key: string]: unknown;
}
