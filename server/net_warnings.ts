/**
 * The front door's warnings. Anyone who reaches the port can make these lines, so each
 * kind (refused connections, failed handshakes, other connection errors) is rate-limited.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { LogThrottle } from "./log.ts";

/** The kind of a front-door warning, named in plural for the throttle's summary. */
function kindOf(message: string): string {
  if (message.startsWith("refusing connection")) return "refused connections";
  if (message.startsWith("handshake with")) return "failed handshakes";
  return "connection errors";
}

/** Rate-limited warnings, one throttle per kind. */
export class NetWarnings {
  #log: Logger;
  #throttles = new Map<string, LogThrottle>();

  /**
   * Warnings with no throttle yet; each kind gets one at its first warning.
   *
   * @param log the `net` log
   */
  constructor(log: Logger) {
    this.#log = log;
  }

  /**
   * Log a warning, unless too many of its kind came lately.
   *
   * @param message the line
   */
  warn(message: string): void {
    const what = kindOf(message);
    let t = this.#throttles.get(what);
    if (!t) {
      t = new LogThrottle({ sink: (l) => this.#log.warn(l), what });
      this.#throttles.set(what, t);
    }
    t.log(message);
  }

  /** Write the pending summaries and stop the throttles' timers. */
  close(): void {
    for (const t of this.#throttles.values()) t.close();
  }
}
