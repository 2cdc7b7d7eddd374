/**
 * The docker element: a container run on the server's Docker engine, with the process
 * verbs (`stdin`, `stdout`, `stderr`, `signal`, `wait`, `peek`, `scrub`).
 *
 * Containers are named `circuit-X<server>-<hash of the anchor path>` and labelled with
 * the server's var directory, so a server restarted on the same `--var` removes the
 * containers its previous incarnation left.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { CircuitError } from "../../net/errors.ts";
import { ProcOp } from "../../net/wire/mod.ts";
import type { Element, ElementCall, ElementContext, ElementKind } from "../element.ts";
import { parseSignal } from "../proc/signals.ts";
import { abortable, Stdio } from "../stdio.ts";
import { Engine, engineAddress } from "./engine.ts";
import { createBody, type DockerRun, parseRun } from "./spec.ts";

/** Label holding the var directory of the server that made a container. */
export const VAR_LABEL = "circuit.var";

const engines = new Map<string, Engine>();

/**
 * The engine client for a DOCKER_HOST value (one per process).
 *
 * @param dockerHost the value
 * @returns the client
 */
export function engineFor(dockerHost: string): Engine {
  let e = engines.get(dockerHost);
  if (!e) engines.set(dockerHost, e = new Engine(engineAddress(dockerHost)));
  return e;
}

/**
 * The container name for an anchor.
 *
 * @param serverId the server id (16 hex digits)
 * @param path the anchor's absolute path
 * @returns `circuit-X<id>-<12 hex>`
 */
export function containerName(serverId: string, path: string): string {
  return `circuit-X${serverId}-${createHash("sha256").update(path).digest("hex").slice(0, 12)}`;
}

/** A container. */
export class DockerElement implements Element {
  /** `ls -l` kind. */
  readonly kind = "docker";
  #ctx: ElementContext;
  #engine: Engine;
  #name: string;
  #stdio: Stdio;
  #child: Deno.ChildProcess | null = null;
  #exited: Promise<void>;
  #waitAbort = new AbortController();
  #scrubbing: Promise<void> | null = null;
  #removing: Promise<void> | null = null;

  private constructor(ctx: ElementContext, engine: Engine, name: string) {
    this.#ctx = ctx;
    this.#engine = engine;
    this.#name = name;
    this.#stdio = new Stdio(
      ctx.path,
      ctx.settings.outputBoundBytes,
      ctx.settings.outputHoldMs,
    );
    this.#exited = Promise.resolve();
  }

  /**
   * Create and start the container, attached. On any failure nothing is left behind.
   *
   * @param ctx path, settings
   * @param run the run
   * @param engine the engine
   * @returns the element
   * @throws {CircuitError} the engine's reason (unknown image, bad volume, engine down)
   */
  static async start(ctx: ElementContext, run: DockerRun, engine: Engine): Promise<DockerElement> {
    const name = containerName(ctx.serverId, ctx.path);
    const labels = {
      [VAR_LABEL]: ctx.settings.varDir,
      "circuit.server": `X${ctx.serverId}`,
      "circuit.path": ctx.path,
    };
    await engine.must(
      `Creating container for ${ctx.path}`,
      "POST",
      `/containers/create?name=${name}`,
      createBody(run, labels),
    );
    const el = new DockerElement(ctx, engine, name);
    try {
      el.#attach(run);
    } catch (err) {
      await el.#remove();
      throw err;
    }
    return el;
  }

  #attach(run: DockerRun): void {
    // Wait for the exit before starting, so a quick exit cannot be missed.
    const waited = this.#engine.must(
      `Waiting for ${this.#ctx.path}`,
      "POST",
      `/containers/${this.#name}/wait?condition=next-exit`,
      undefined,
      this.#waitAbort.signal,
    );
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command("docker", {
        args: ["start", "--attach", "--interactive", this.#name],
        env: { DOCKER_HOST: this.#engine.address.dockerHost },
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (err) {
      this.#waitAbort.abort();
      throw new CircuitError(
        "unreachable",
        `Starting ${this.#ctx.path} failed: cannot run docker: ${(err as Error).message}`,
      );
    }
    this.#child = child;
    this.#stdio.attach(child);
    // Exited once the engine says so, or once the attached CLI ends (engine gone).
    this.#exited = Promise.race([waited.catch(() => child.status), child.status]).then(() => {});
    void this.#exited.then(async () => {
      if (!run.Scrub) return;
      try {
        await this.#removeOnce();
      } catch {
        return; // the engine did not answer: the element stays, for a scrub to retry
      }
      this.#ctx.removeSelf();
    });
  }

  /** @returns the container's `docker inspect` object */
  async peek(): Promise<unknown> {
    return await this.#engine.must(
      `Inspecting ${this.#ctx.path}`,
      "GET",
      `/containers/${this.#name}/json`,
    );
  }

  /** Stop (TERM, KILL after the grace period), then remove the container. */
  scrub(): Promise<void> {
    this.#scrubbing ??= (async () => {
      const t = Math.max(0, Math.ceil(this.#ctx.settings.scrubGraceMs / 1000));
      await this.#engine.request("POST", `/containers/${this.#name}/stop?t=${t}`).catch(() => {});
      // The container must be gone before the anchor is freed: an engine that does not
      // answer fails the scrub (the element stays, to be scrubbed again), rather than
      // reporting success and leaving the container behind. What is local ends anyway.
      let failed: unknown = null;
      await this.#removeOrFail(`Scrubbing ${this.#ctx.path}`).catch((err) => (failed = err));
      this.#waitAbort.abort();
      try {
        this.#child?.kill("SIGKILL");
      } catch { /* exited */ }
      await this.#child?.status.catch(() => {});
      await this.#stdio.closeStdin();
      this.#stdio.close();
      if (failed) {
        this.#scrubbing = null;
        throw failed;
      }
    })();
    return this.#scrubbing;
  }

  /**
   * `wait`, `signal {name}`, `stdin`, `stdout`, `stderr`.
   *
   * @param op the operation
   * @param call its arguments and streams
   * @returns the reply
   */
  async call(op: string, call: ElementCall): Promise<unknown> {
    switch (op) {
      case ProcOp.WAIT:
        await abortable(this.#exited, call.signal);
        return await this.peek();
      case ProcOp.SIGNAL:
        return await this.#signal(String((call.args as { name?: unknown } | null)?.name));
      case ProcOp.STDIN:
      case ProcOp.STDOUT:
      case ProcOp.STDERR:
        return await this.#stdio.serve(op, call);
      default:
        throw new CircuitError("bad request", `A docker container has no operation "${op}"`);
    }
  }

  async #signal(name: string): Promise<null> {
    const sig = parseSignal(name);
    const { status, json } = await this.#engine.request(
      "POST",
      `/containers/${this.#name}/kill?signal=${sig}`,
    );
    if (status === 409) {
      throw new CircuitError(
        "bad request",
        `Signaling ${this.#ctx.path} failed: the container is not running`,
      );
    }
    if (status >= 300) {
      const message = (json as { message?: string } | null)?.message ?? `HTTP ${status}`;
      throw new CircuitError("bad request", `Signaling ${this.#ctx.path} failed: ${message}`);
    }
    return null;
  }

  async #remove(): Promise<void> {
    await this.#removeOnce().catch(() => {});
  }

  /** {@linkcode DockerElement.#removeOnce}, its failure said as `WHAT failed: why`. */
  async #removeOrFail(what: string): Promise<void> {
    try {
      await this.#removeOnce();
    } catch (err) {
      const e = err as CircuitError;
      throw new CircuitError(e.code ?? "unreachable", `${what} failed: ${e.message}`, {
        cause: err,
      });
    }
  }

  /**
   * Remove the container, once for all who ask at the same time (a scrub and the exit
   * of a `Scrub: true` container); a failure lets the next ask try again. One already
   * gone counts as removed; one the engine is already removing is waited for.
   */
  #removeOnce(): Promise<void> {
    this.#removing ??= (async () => {
      const path = `/containers/${this.#name}`;
      const r = await this.#engine.request("DELETE", `${path}?force=1&v=1`);
      if ((r.status >= 200 && r.status < 300) || r.status === 404) return;
      if (r.status === 409) { // "removal of container … is already in progress"
        for (let i = 0; i < 100; i++) {
          await new Promise((done) => setTimeout(done, 100));
          if ((await this.#engine.request("GET", `${path}/json`)).status === 404) return;
        }
      }
      const message = (r.json as { message?: string } | null)?.message ?? `HTTP ${r.status}`;
      throw new CircuitError("unreachable", message);
    })().catch((err) => {
      this.#removing = null;
      throw err;
    });
    return this.#removing;
  }
}

/**
 * Remove the containers a previous server on this var directory left behind.
 *
 * @param engine the engine
 * @param varDir the var directory
 * @returns how many were removed
 */
export async function removeLeftovers(engine: Engine, varDir: string): Promise<number> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`${VAR_LABEL}=${varDir}`] }));
  const list = await engine.must(
    "Listing containers",
    "GET",
    `/containers/json?all=1&filters=${filters}`,
  );
  const ids = (list as Array<{ Id: string }>).map((c) => c.Id);
  await Promise.all(ids.map((id) => engine.request("DELETE", `/containers/${id}?force=1&v=1`)));
  return ids.length;
}

/** The `docker` element kind: spec `{run}`; needs `start --docker`. */
export const dockerKind: ElementKind = {
  name: "docker",
  async make(ctx: ElementContext, spec: unknown): Promise<Element> {
    const host = ctx.settings.dockerHost;
    if (host === null) {
      throw new CircuitError(
        "bad request",
        "Docker elements are not enabled on this server (start it with --docker)",
      );
    }
    const run = parseRun((spec as { run?: unknown } | null)?.run);
    return await DockerElement.start(ctx, run, engineFor(host));
  },
};
