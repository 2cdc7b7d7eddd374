/**
 * The server element on the wire: what a server's own anchor (`/X…`) serves.
 *
 * - `stk`: → a diagnostic dump (memory, connections, elements, operations).
 * - `join`: args {@linkcode JoinArgs} → null.
 * - `suicide`: → null; the server then stops.
 *
 * @module
 */

/** The kind `ls -l` shows for a server's anchor. */
export const SERVER_KIND = "server";

/** A server anchor's own operations. */
export const ServerOp = {
  /** A diagnostic dump. */
  STK: "stk",
  /** Join the cluster of a URL: args {@linkcode JoinArgs}. */
  JOIN: "join",
  /** Stop the server cleanly. */
  SUICIDE: "suicide",
} as const;

/** What `join` takes. */
export interface JoinArgs {
  /** A member of the other cluster. */
  url: string;
}
