/**
 * The circuit daemon: one server's part of the cluster. It sits on the transport and
 * membership (`net/`) and hosts the elements (`elements/`); nothing below imports it.
 *
 * Its files, each importing only those listed before it:
 *
 * - **Settings and the machine**: `config.ts` (every default, bound and timing of this
 *   layer), `log.ts` (escaped, throttled log lines), `var_dir.ts` (the locked `--var`
 *   directory), `local_peer.ts` (which local user owns a loopback socket) with
 *   `sock_diag.ts` (the kernel query behind it), `addr.ts` (which address to bind and
 *   advertise).
 * - **Components**, each with its own `describe()` or `stats()` for `stk`:
 *   `accept_gate.ts` (the accept loop and pre-auth caps), `bind.ts` (TCP and UDP on one
 *   port), `net_warnings.ts`, `connections.ts` (connections others dialed),
 *   `oplog.ts` (the operation log), `membership.ts` (the member table), `namespace.ts`
 *   (the anchor tree), `mesh/` (connections this server dials: pool, watch ring,
 *   rejoiner, evidence for membership).
 * - **Serving calls**: `listing.ts` (`ls`, here and across the cluster) and `router.ts`
 *   (local operations, forwarding to other servers, peers' membership calls).
 * - **Putting it together**: `stk.ts` (the diagnostic dump from each component's own
 *   view), `lifecycle.ts` (the ordered stop), `assembly.ts` (the components made in
 *   dependency order and wired), `server.ts` ({@linkcode startServer}: the flags, the
 *   var directory, the ports, the assembly).
 *
 * ```ts ignore
 * import { startServer } from "./mod.ts";
 * const server = await startServer({ addr: "127.0.0.1:0" });
 * console.log(server.url);
 * await server.stop();
 * ```
 *
 * @module
 */

export { type RunningServer, type ServerOptions, startServer } from "./server.ts";
// The types `ServerOptions` refers to, so its documentation is whole.
export type { MembershipConfig, MembershipProfile } from "../net/membership/mod.ts";
export type { TransportConfig } from "../net/config.ts";
