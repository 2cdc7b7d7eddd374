/**
 * `@circuit/client`: script a circuit cluster from any machine.
 *
 * Connect to one server; every other server's anchors are reached through it.
 *
 * @example List the cluster
 * ```ts ignore
 * import { connect } from "@circuit/client";
 *
 * await using client = await connect("circuit://127.0.0.1:7711/1234/Q317c2314a386a9db");
 * for (const { path, kind } of await client.walk("/").ls({ recursive: true })) {
 *   console.log(kind.padEnd(15), path);
 * }
 * ```
 *
 * @module
 */

export { Anchor, type CallOptions, type LsOptions } from "./client/anchor.ts";
export type { ElementAnchor } from "./client/types.ts";
export { type Client, connect, type ConnectOptions, readKeyFile } from "./client/client.ts";
export { discover, type DiscoverOptions } from "./client/discover.ts";
export { comparePaths } from "./client/anchor.ts";
export { type Glob, joinPath, parseGlob, splitPath } from "./client/path.ts";
export {
  isStdinClosed,
  type OutputStream,
  Proc,
  type ProcCommand,
  type ProcState,
} from "./client/proc.ts";
export { Chan, type ChanState } from "./client/chan.ts";
export { Nameserver, type NameserverState } from "./client/dns.ts";
export { Container, type ContainerRun, type ContainerState } from "./client/docker.ts";
export { type MemberEvent, Subscription, type SubscriptionState } from "./client/subscription.ts";
export type { Incoming } from "./client/_recv.ts";
export { CircuitError, type ErrorCode } from "./net/errors.ts";
export { generateKey, parseKey } from "./net/keys.ts";
export type { LsEntry } from "./net/wire.ts";
export type { OutgoingCall } from "./net/mux.ts";
