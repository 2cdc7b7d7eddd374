/**
 * `@circuit/client`: script a circuit cluster from any machine.
 *
 * Connect to one server; every other server's anchors are reached through it.
 * Elements: processes ({@linkcode Proc}), channels ({@linkcode Chan}), subscriptions
 * ({@linkcode Subscription}), nameservers ({@linkcode Nameserver}) and Docker containers
 * ({@linkcode Container}); every failure is a {@linkcode CircuitError}. The package's
 * `client/README.md` has one example of each.
 *
 * @example List the cluster
 * ```ts
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

export {
  Anchor,
  type CallOptions,
  Chan,
  type ChanState,
  type Client,
  comparePaths,
  connect,
  type ConnectOptions,
  Container,
  type ContainerRun,
  type ContainerState,
  discover,
  type DiscoverOptions,
  type ElementAnchor,
  ElementHandle,
  EXEC_FAILED_STATUS,
  exitStatus,
  type Glob,
  type Incoming,
  isStdinClosed,
  joinPath,
  type LsOptions,
  type MemberEvent,
  Nameserver,
  type NameserverState,
  type OpenOptions,
  type OutputStream,
  parseGlob,
  parseSelector,
  Proc,
  type ProcCommand,
  type ProcState,
  readKeyFile,
  recvStream,
  run,
  RUN_FAILED_STATUS,
  RUN_KILL_AFTER_MS,
  type RunClient,
  type RunJob,
  type RunLine,
  type RunOptions,
  type RunResult,
  runStatus,
  type SelectorTerm,
  splitPath,
  type StreamCall,
  Subscription,
  type SubscriptionState,
} from "./client/mod.ts";
export { CircuitError, type ErrorCode } from "./net/errors.ts";
export { generateKey, parseKey } from "./net/keys.ts";
export { printable } from "./net/names.ts";
export type { LsEntry } from "./net/wire/mod.ts";
