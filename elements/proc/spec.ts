/**
 * The process command: JSON with keys matched case-insensitively, unknown keys ignored.
 *
 * @module
 */

import { CircuitError } from "../../net/errors.ts";

/** A process command, as `peek` shows it under `Cmd`. */
export interface Cmd {
  /** `K=V` entries; null inherits the server's environment. */
  Env: string[] | null;
  /** Working directory; empty for the server's. */
  Dir: string;
  /** The program, used as given (no $PATH search). */
  Path: string;
  /** Arguments after the program name. */
  Args: string[] | null;
  /** Remove the element once the process has exited. */
  Scrub: boolean;
}

function strings(v: unknown, key: string): string[] | null {
  if (v === null || v === undefined) return null;
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) {
    throw new CircuitError(
      "bad request",
      `command json not parsing: "${key}" must be a list of strings`,
    );
  }
  return v;
}

/**
 * Validate a command object.
 *
 * @param raw parsed JSON
 * @returns the command
 * @throws {CircuitError} `bad request` (`command json not parsing: …`)
 */
export function parseCmd(raw: unknown): Cmd {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    throw new CircuitError("bad request", "command json not parsing: expected an object");
  }
  const byKey = new Map<string, unknown>();
  for (const [k, v] of Object.entries(raw)) byKey.set(k.toLowerCase(), v);
  const path = byKey.get("path");
  if (typeof path !== "string" || path === "") {
    throw new CircuitError(
      "bad request",
      `command json not parsing: "Path" must be a non-empty string`,
    );
  }
  const dir = byKey.get("dir") ?? "";
  if (typeof dir !== "string") {
    throw new CircuitError("bad request", `command json not parsing: "Dir" must be a string`);
  }
  const scrub = byKey.get("scrub") ?? false;
  if (typeof scrub !== "boolean") {
    throw new CircuitError(
      "bad request",
      `command json not parsing: "Scrub" must be true or false`,
    );
  }
  const env = strings(byKey.get("env"), "Env");
  for (const e of env ?? []) {
    if (!e.includes("=")) {
      throw new CircuitError(
        "bad request",
        `command json not parsing: Env entry "${e}" is not K=V`,
      );
    }
  }
  return { Env: env, Dir: dir, Path: path, Args: strings(byKey.get("args"), "Args"), Scrub: scrub };
}

/**
 * The program as Deno.Command must be given it so that no $PATH search happens: a bare
 * name is taken relative to the working directory, as Go's exec.Cmd does with Path.
 *
 * @param path the command's Path
 * @returns the path to spawn
 */
export function spawnPath(path: string): string {
  return path.includes("/") ? path : `./${path}`;
}

/**
 * Turn `K=V` entries into an environment object.
 *
 * @param env the entries
 * @returns the object
 */
export function envObject(env: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of env) {
    const i = e.indexOf("=");
    out[e.slice(0, i)] = e.slice(i + 1);
  }
  return out;
}
