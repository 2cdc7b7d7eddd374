/**
 * The server's front door: the accept loop, which survives every accept error, and the
 * caps on connections that have not finished their handshake (pre-auth), in all and per
 * source address. Anyone who can reach the port can open connections, so everything
 * here is bounded and aggregated: a refused socket is closed at once and only counted.
 *
 * @module
 */

import {
  ACCEPT_BACKOFF_MAX_MS,
  ACCEPT_BACKOFF_MIN_MS,
  MAX_PREAUTH_CONNECTIONS,
  MAX_PREAUTH_PER_ADDRESS,
} from "./config.ts";
import { LogThrottle } from "./log.ts";
import { parseIp } from "./local_peer.ts";

/** Options of {@linkcode AcceptGate}. */
export interface AcceptGateOptions {
  /** The bound listener; the gate owns it from now on and closes it. */
  listener: Deno.Listener;
  /**
   * Run the handshake of an accepted socket; the connection counts as pre-auth until the
   * promise settles (the handshake has its own deadline).
   */
  handshake: (sock: Deno.Conn) => Promise<unknown>;
  /** Warnings: accept failures (once per burst) and refusals (one summary per window). */
  warn: (message: string) => void;
  /** Pre-auth connections in all. @default {MAX_PREAUTH_CONNECTIONS} */
  maxPreAuth?: number;
  /** Pre-auth connections per source address. @default {MAX_PREAUTH_PER_ADDRESS} */
  maxPreAuthPerAddress?: number;
}

/** The listener's health, as `stk` shows it under `Listener`. */
export interface ListenerStats {
  /** `ok`; `failing` while accepting fails; `closed` once stopped. */
  State: "ok" | "failing" | "closed";
  /** Accept errors since start. */
  AcceptErrors: number;
  /** The last accept error's message, or null. */
  LastError: string | null;
  /** When it happened (RFC 3339), or null. */
  LastErrorAt: string | null;
  /** Sockets accepted since start. */
  Accepted: number;
  /** Connections in their handshake now. */
  PreAuth: number;
  /** The cap on those, in all. */
  PreAuthLimit: number;
  /** The cap on those per source address. */
  PreAuthPerAddressLimit: number;
  /** Sockets closed at once because the total cap was reached. */
  RefusedOverTotal: number;
  /** Sockets closed at once because their address's cap was reached. */
  RefusedOverPerAddress: number;
}

/**
 * The source an accepted socket counts against: the IPv4 address (IPv4-mapped included),
 * or the /64 network of an IPv6 address, whose holder usually has all of it.
 *
 * @param hostname the remote address
 * @returns the key
 */
export function sourceKey(hostname: string): string {
  const b = parseIp(hostname);
  if (!b) return hostname;
  const mapped = b.length === 16 && b.subarray(0, 10).every((x) => x === 0) &&
    b[10] === 0xff && b[11] === 0xff;
  if (b.length === 4 || mapped) return [...b.subarray(b.length - 4)].join(".");
  return [...b.subarray(0, 8)].map((x) => x.toString(16).padStart(2, "0")).join("") + "/64";
}

/** Runs the accept loop of one listener. */
export class AcceptGate {
  #o: Required<AcceptGateOptions>;
  #perSource = new Map<string, number>();
  #preAuth = 0;
  #accepted = 0;
  #errors = 0;
  #burstErrors = 0;
  #burstStart = 0;
  #lastError: string | null = null;
  #lastErrorAt: string | null = null;
  #overTotal = 0;
  #overPerAddress = 0;
  #state: ListenerStats["State"] = "ok";
  #closed = false;
  #refusals: LogThrottle;
  #wake: (() => void) | null = null;
  #sleepTimer: ReturnType<typeof setTimeout> | undefined;
  /** Resolves when the loop has ended (after {@linkcode AcceptGate.close}). */
  readonly done: Promise<void>;

  /**
   * Start accepting.
   *
   * @param options listener, handshake, log, caps
   */
  constructor(options: AcceptGateOptions) {
    this.#o = {
      maxPreAuth: MAX_PREAUTH_CONNECTIONS,
      maxPreAuthPerAddress: MAX_PREAUTH_PER_ADDRESS,
      ...options,
    };
    this.#refusals = new LogThrottle({
      sink: options.warn,
      what:
        `connections closed unserved: too many unfinished handshakes (limits ${this.#o.maxPreAuth} in all, ${this.#o.maxPreAuthPerAddress} per address)`,
      linesPerWindow: 0,
    });
    this.done = this.#loop();
  }

  /** Whether the listener is accepting (not failing, not closed). */
  get healthy(): boolean {
    return this.#state === "ok";
  }

  /**
   * The listener's health and counters, for `stk`.
   *
   * @returns the `Listener` section
   */
  stats(): ListenerStats {
    return {
      State: this.#state,
      AcceptErrors: this.#errors,
      LastError: this.#lastError,
      LastErrorAt: this.#lastErrorAt,
      Accepted: this.#accepted,
      PreAuth: this.#preAuth,
      PreAuthLimit: this.#o.maxPreAuth,
      PreAuthPerAddressLimit: this.#o.maxPreAuthPerAddress,
      RefusedOverTotal: this.#overTotal,
      RefusedOverPerAddress: this.#overPerAddress,
    };
  }

  /** Stop accepting and close the listener; connections already accepted are not touched. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#state = "closed";
    try {
      this.#o.listener.close();
    } catch { /* closed */ }
    clearTimeout(this.#sleepTimer);
    this.#wake?.();
    this.#refusals.close();
  }

  async #loop(): Promise<void> {
    let backoff = ACCEPT_BACKOFF_MIN_MS;
    while (!this.#closed) {
      let sock: Deno.Conn;
      try {
        sock = await this.#o.listener.accept();
      } catch (err) {
        if (this.#closed) break;
        this.#failed(err);
        await this.#sleep(backoff);
        backoff = Math.min(backoff * 2, ACCEPT_BACKOFF_MAX_MS);
        continue;
      }
      backoff = ACCEPT_BACKOFF_MIN_MS;
      if (this.#state === "failing") this.#recovered();
      this.#admit(sock);
    }
  }

  #admit(sock: Deno.Conn): void {
    if (this.#closed) {
      closeQuietly(sock);
      return;
    }
    this.#accepted++;
    const source = sourceKey((sock.remoteAddr as Deno.NetAddr).hostname ?? "");
    const fromSource = this.#perSource.get(source) ?? 0;
    if (this.#preAuth >= this.#o.maxPreAuth || fromSource >= this.#o.maxPreAuthPerAddress) {
      if (this.#preAuth >= this.#o.maxPreAuth) this.#overTotal++;
      else this.#overPerAddress++;
      this.#refusals.count();
      closeQuietly(sock);
      return;
    }
    this.#preAuth++;
    this.#perSource.set(source, fromSource + 1);
    const release = () => {
      this.#preAuth--;
      const n = (this.#perSource.get(source) ?? 1) - 1;
      if (n > 0) this.#perSource.set(source, n);
      else this.#perSource.delete(source);
    };
    let running: Promise<unknown>;
    try {
      running = this.#o.handshake(sock);
    } catch (err) {
      running = Promise.reject(err);
    }
    running.catch(() => closeQuietly(sock)).finally(release);
  }

  #failed(err: unknown): void {
    const why = err instanceof Error ? err.message : String(err);
    this.#errors++;
    this.#lastError = why;
    this.#lastErrorAt = new Date().toISOString();
    if (this.#state === "ok") {
      this.#state = "failing";
      this.#burstErrors = 0;
      this.#burstStart = performance.now();
      this.#o.warn(
        `listener cannot accept connections: ${why}; retrying every ${ACCEPT_BACKOFF_MIN_MS}-${ACCEPT_BACKOFF_MAX_MS} ms`,
      );
    }
    this.#burstErrors++;
  }

  #recovered(): void {
    this.#state = "ok";
    const ms = Math.round(performance.now() - this.#burstStart);
    this.#o.warn(
      `listener accepting again after ${this.#burstErrors} accept errors in ${ms} ms (last: ${this.#lastError})`,
    );
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#wake = resolve;
      this.#sleepTimer = setTimeout(resolve, ms);
    }).then(() => {
      this.#wake = null;
    });
  }
}

function closeQuietly(sock: Deno.Conn): void {
  try {
    sock.close();
  } catch { /* closed */ }
}
