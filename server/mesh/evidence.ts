/**
 * What TCP tells the membership layer: a port that refuses connections, or a newer process
 * answering at a member's address, proves the member gone; any other failure to reach it
 * (a timeout, a reset, a garbled handshake) only makes it suspect, and the membership
 * layer's probes decide.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { CircuitError } from "../../net/errors.ts";
import { parseUrl } from "../../net/url.ts";
import type { MemberInfo } from "../../net/wire/mod.ts";

/** Where evidence goes (the membership layer; a `Memberlist` fits). */
export interface EvidenceSink {
  /** Direct evidence that a member's process is gone. */
  failed(id: string): void;
  /** A member could not be reached. */
  suspect(id: string): void;
}

/** What the failure evidence needs. */
export interface FailureEvidenceOptions {
  /** The member, when `id` still is one. */
  member(id: string): MemberInfo | undefined;
  /** Where evidence goes; none yet before the mesh serves. */
  sink(): EvidenceSink | undefined;
  /** Whether the mesh is stopping (then nothing is reported). */
  stopping(): boolean;
  /** Time limit of a port check, in ms. */
  checkTimeoutMs: number;
  /** Mesh log. */
  log: Logger;
}

/**
 * Whether a dial error proves the process is gone: its port refused, or a newer process
 * answers at its address (the handshake says `not found`).
 *
 * @param err the dial's error
 * @returns true when it is proof
 */
export function isGone(err: unknown): boolean {
  if (!(err instanceof CircuitError)) return false;
  if (err.code === "not found") return true;
  return err.cause instanceof Deno.errors.ConnectionRefused;
}

/** Turns what dials and port checks find into failures and suspicions. */
export class FailureEvidence {
  #o: FailureEvidenceOptions;
  #checkingPorts = new Set<string>();

  /** @param options the member table, the sink, the log */
  constructor(options: FailureEvidenceOptions) {
    this.#o = options;
  }

  /**
   * A member could not be reached: gone when {@linkcode isGone} says so, else suspect.
   * Nothing is reported for a server that is no longer a member, or while stopping.
   *
   * @param id the member
   * @param err why the dial failed
   */
  unreachable(id: string, err: unknown): void {
    if (this.#o.stopping() || !this.#o.member(id)) return;
    const sink = this.#o.sink();
    const why = (err as Error).message;
    if (isGone(err)) {
      this.#o.log.info(`member X${id} is gone: ${why}`);
      sink?.failed(id);
    } else {
      this.#o.log.debug(`member X${id} is unreachable, suspecting it: ${why}`);
      sink?.suspect(id);
    }
  }

  /**
   * Connect to a member's port with no handshake: a refused connection proves the
   * process gone, and it is declared failed; anything else proves nothing. One check per
   * member at a time.
   *
   * @param id the member
   * @returns once the check is over (it never rejects)
   */
  async checkPort(id: string): Promise<void> {
    const m = this.#o.member(id);
    if (this.#o.stopping() || !m || this.#checkingPorts.has(id)) return;
    let u: ReturnType<typeof parseUrl>;
    try {
      u = parseUrl(m.url);
    } catch {
      return;
    }
    this.#checkingPorts.add(id);
    const signal = AbortSignal.timeout(this.#o.checkTimeoutMs);
    try {
      const c = await Deno.connect(
        { hostname: u.host, port: u.port, signal } as Deno.ConnectOptions,
      );
      c.close();
    } catch (err) {
      if (!(err instanceof Deno.errors.ConnectionRefused)) return;
      if (this.#o.stopping() || !this.#o.member(id)) return;
      this.#o.log.info(`member X${id} is gone: its port ${u.port} refuses connections`);
      this.#o.sink()?.failed(id);
    } finally {
      this.#checkingPorts.delete(id);
    }
  }
}
