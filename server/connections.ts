/**
 * The connections others dialed to this server (clients and peers), for `stk` and for
 * the GOAWAY sent to each when the server stops.
 *
 * @module
 */

import type { Connection } from "../net/conn.ts";

/** Accepted connections, each until it closes. */
export class AcceptedConnections {
  #conns = new Set<Connection>();

  /**
   * Track a connection until it closes.
   *
   * @param conn an accepted connection
   */
  add(conn: Connection): void {
    this.#conns.add(conn);
    void conn.closed.then(() => this.#conns.delete(conn));
  }

  /**
   * The connections for `stk`.
   *
   * @returns each one's role and remote address
   */
  describe(): Array<{ Role: string; Addr: string }> {
    return [...this.#conns].map((c) => ({ Role: c.remote.role, Addr: c.remote.addr }));
  }

  /**
   * Tell every connection we are going away, flushing what is queued on it.
   *
   * @param reason sent to the other end
   * @returns when every GOAWAY is sent
   */
  async goAway(reason: string): Promise<void> {
    await Promise.all([...this.#conns].map((c) => c.mux.goAway(reason)));
  }
}
