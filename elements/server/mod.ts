/**
 * The built-in server element at `/X…`: `peek`, `stk`, `join`, `suicide`.
 *
 * @module
 */

import { CircuitError } from "../../net/errors.ts";
import type { Element, ElementCall } from "../element.ts";

/** The server element's operations that change nothing. */
const SERVER_QUERIES: ReadonlySet<string> = new Set(["stk"]);

/** What the server element needs from the server that hosts it. */
export interface ServerHooks {
  /** The server's URL. */
  url: string;
  /** RFC 3339 start time. */
  joined: string;
  /** A diagnostic dump. */
  stk(): Record<string, unknown>;
  /** Merge with the cluster of `url`. */
  join(url: string, signal: AbortSignal): Promise<void>;
  /** Stop the server cleanly, after the reply has been sent. */
  suicide(): void;
}

/** The server element's `peek` shape. */
export interface ServerPeek {
  /** The server's URL. */
  Addr: string;
  /** RFC 3339 start time. */
  Joined: string;
}

/** The element at every server's root anchor. */
export class ServerElement implements Element {
  /** `ls -l` kind. */
  readonly kind = "server";
  /** `stk` changes nothing, so it stays out of the operation log. */
  readonly queries: ReadonlySet<string> = SERVER_QUERIES;
  #hooks: ServerHooks;

  /**
   * The element of the server that passes its hooks.
   *
   * @param hooks the hosting server's operations
   */
  constructor(hooks: ServerHooks) {
    this.#hooks = hooks;
  }

  /**
   * What the server is: its URL and start time.
   *
   * @returns `{Addr, Joined}`
   */
  peek(): ServerPeek {
    return { Addr: this.#hooks.url, Joined: this.#hooks.joined };
  }

  /**
   * Refuse: a server is not scrubbed.
   *
   * @throws {CircuitError} always: a server is stopped with `suicide`
   */
  scrub(): void {
    throw new CircuitError("bad request", "Scrubbing a server is not possible; use suicide");
  }

  /**
   * `stk`, `join {url}`, `suicide`.
   *
   * @param op the operation
   * @param call its arguments
   * @returns the operation's reply
   */
  async call(op: string, call: ElementCall): Promise<unknown> {
    switch (op) {
      case "stk":
        return this.#hooks.stk();
      case "join": {
        const url = (call.args as { url?: unknown } | null)?.url;
        if (typeof url !== "string") {
          throw new CircuitError("bad request", "Joining failed: no URL given");
        }
        await this.#hooks.join(url, call.signal);
        return null;
      }
      case "suicide":
        // A macrotask, so the reply is queued before the shutdown's GOAWAY.
        setTimeout(() => this.#hooks.suicide(), 0);
        return null;
      default:
        throw new CircuitError("bad request", `A server has no operation "${op}"`);
    }
  }
}
