/**
 * Keep-alive: a quiet connection is pinged every `pingIntervalMs`, which also measures the
 * round trip; one that has received nothing for `deadAfterMs` is dead. Traffic is proof
 * of life, so a busy connection sends no pings. One timer per process per interval serves
 * every connection.
 *
 * @module
 */

/** What a keep-alive tick decides: the connection is dead, needs a ping, or is fine. */
export type KeepAliveAction = "dead" | "ping" | "none";

/** The keep-alive timings (see `TransportConfig`). */
export interface KeepAliveTimings {
  /** Ping a connection quiet for this long, in ms; also the tick interval. */
  pingIntervalMs: number;
  /** A connection quiet for longer than this is dead, in ms. */
  deadAfterMs: number;
}

/**
 * What to do about a connection that has received nothing for `quietMs`.
 *
 * @param quietMs ms since anything was received
 * @param timings the keep-alive timings
 * @returns the action
 */
export function keepAliveAction(quietMs: number, timings: KeepAliveTimings): KeepAliveAction {
  if (quietMs > timings.deadAfterMs) return "dead";
  // Only a quiet connection needs proof of life; traffic is proof enough.
  if (quietMs < timings.pingIntervalMs) return "none";
  return "ping";
}

/**
 * One keep-alive timer per process per interval, however many connections: idle
 * servers wake once per interval instead of once per connection.
 */
const tickers = new Map<number, { timer: number; ticks: Set<() => void> }>();

function startTicking(intervalMs: number, tick: () => void): () => void {
  let t = tickers.get(intervalMs);
  if (!t) {
    const ticks = new Set<() => void>();
    const timer = setInterval(() => {
      for (const f of ticks) f();
    }, intervalMs) as unknown as number;
    Deno.unrefTimer(timer);
    tickers.set(intervalMs, t = { timer, ticks });
  }
  const ticker = t;
  ticker.ticks.add(tick);
  return () => {
    ticker.ticks.delete(tick);
    if (ticker.ticks.size === 0 && tickers.get(intervalMs) === ticker) {
      clearInterval(ticker.timer);
      tickers.delete(intervalMs);
    }
  };
}

/** Options of a {@linkcode KeepAlive}. */
export interface KeepAliveOptions {
  /** The timings. */
  timings: KeepAliveTimings;
  /** Send a PING. */
  ping(): void;
  /** The connection is dead: close it. */
  dead(): void;
}

/** The keep-alive of one connection. */
export class KeepAlive {
  /** Last measured ping round trip in ms, or -1. */
  rttMs = -1;
  #o: KeepAliveOptions;
  #lastRecv = Date.now();
  #pingSentAt = 0;
  #stop: () => void;

  /** @param options timings and what to do */
  constructor(options: KeepAliveOptions) {
    this.#o = options;
    this.#stop = startTicking(options.timings.pingIntervalMs, () => this.#tick());
  }

  /** Something arrived: the connection is alive. */
  received(): void {
    this.#lastRecv = Date.now();
  }

  /** A PONG arrived: measure the round trip. */
  pong(): void {
    if (this.#pingSentAt) this.rttMs = performance.now() - this.#pingSentAt;
  }

  /** Stop ticking (the connection closed). */
  stop(): void {
    this.#stop();
  }

  #tick(): void {
    switch (keepAliveAction(Date.now() - this.#lastRecv, this.#o.timings)) {
      case "dead":
        return this.#o.dead();
      case "ping":
        this.#pingSentAt = performance.now();
        this.#o.ping();
    }
  }
}
