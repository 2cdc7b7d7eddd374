/**
 * A small Docker Engine API client over the engine's socket (`DOCKER_HOST`, default
 * `unix:///var/run/docker.sock`): create, inspect, wait, kill, stop, remove, list. The
 * API rather than the CLI, so `peek` costs one local HTTP request instead of a fork.
 * Attaching stdin/stdout/stderr needs a hijacked connection, which fetch cannot do; that
 * one step runs the `docker` CLI (`docker start -a -i`) as a child process.
 *
 * @module
 */

import { CircuitError } from "../../net/errors.ts";

/** Where the engine listens. */
export interface EngineAddress {
  /** Base URL for requests. */
  base: string;
  /** The unix socket, when it is one. */
  socket?: string;
  /** The value to give the docker CLI as DOCKER_HOST. */
  dockerHost: string;
}

/**
 * Read DOCKER_HOST.
 *
 * @param value the variable's value, if set
 * @returns the address
 * @throws {CircuitError} `bad request` for a scheme other than unix:// or tcp://
 */
export function engineAddress(value: string | undefined): EngineAddress {
  const v = value?.trim() || "unix:///var/run/docker.sock";
  if (v.startsWith("unix://")) {
    return { base: "http://docker", socket: v.slice("unix://".length), dockerHost: v };
  }
  if (v.startsWith("tcp://")) return { base: `http://${v.slice("tcp://".length)}`, dockerHost: v };
  throw new CircuitError("bad request", `DOCKER_HOST "${v}" is neither unix:// nor tcp://`);
}

/** A client of one engine. */
export class Engine {
  /** The engine's address. */
  readonly address: EngineAddress;
  #client: Deno.HttpClient | undefined;

  /** @param address where the engine listens */
  constructor(address: EngineAddress) {
    this.address = address;
    this.#client = address.socket
      ? Deno.createHttpClient(
        { proxy: { transport: "unix", path: address.socket } } as Deno.CreateHttpClientOptions,
      )
      : undefined;
  }

  /**
   * One API request.
   *
   * @param method HTTP method
   * @param path API path with query
   * @param body JSON body
   * @param signal cancels the request
   * @returns status and parsed JSON body (null when empty)
   * @throws {CircuitError} `unreachable` when the engine does not answer
   */
  async request(
    method: string,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<{ status: number; json: unknown }> {
    let res: Response;
    try {
      res = await fetch(`${this.address.base}${path}`, {
        method,
        client: this.#client,
        headers: body === undefined ? undefined : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw new CircuitError(
        "unreachable",
        `Docker engine at ${this.address.dockerHost} does not answer: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = { message: text.trim() };
    }
    return { status: res.status, json };
  }

  /**
   * A request that must succeed.
   *
   * @param what the action, for the error message
   * @param method HTTP method
   * @param path API path
   * @param body JSON body
   * @param signal cancels it
   * @returns the parsed body
   * @throws {CircuitError} `not found` for 404, `bad request` otherwise, with the engine's message
   */
  async must(
    what: string,
    method: string,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<unknown> {
    const { status, json } = await this.request(method, path, body, signal);
    if (status >= 200 && status < 300) return json;
    const message = (json as { message?: string } | null)?.message ?? `HTTP ${status}`;
    throw new CircuitError(
      status === 404 ? "not found" : "bad request",
      `${what} failed: ${message}`,
    );
  }

  /** Close the HTTP client. */
  close(): void {
    this.#client?.close();
  }
}

/**
 * Check that the engine answers and the docker CLI runs (attach needs it).
 *
 * @param engine the engine
 * @throws {CircuitError} `unreachable` naming what is missing
 */
export async function checkDocker(engine: Engine): Promise<void> {
  const ping = await engine.request("GET", "/_ping", undefined, AbortSignal.timeout(5000));
  if (ping.status !== 200) {
    throw new CircuitError(
      "unreachable",
      `Docker engine at ${engine.address.dockerHost} is not healthy`,
    );
  }
  try {
    const out = await new Deno.Command("docker", {
      args: ["version", "--format", "{{.Client.Version}}"],
      env: { DOCKER_HOST: engine.address.dockerHost },
      stdout: "null",
      stderr: "null",
    }).output();
    if (!out.success) throw new Error(`docker version exited ${out.code}`);
  } catch (err) {
    throw new CircuitError(
      "unreachable",
      `The docker command is not usable (it attaches container streams): ${(err as Error).message}`,
    );
  }
}
