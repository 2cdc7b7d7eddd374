/**
 * The circuit client: connect to any server and reach the whole cluster.
 *
 * ```ts
 * import { connect } from "./mod.ts";
 * await using client = await connect("circuit://127.0.0.1:7711/1234/Q317c2314a386a9db");
 * console.log(await client.walk("/").ls());
 * ```
 *
 * @module
 */

export { type Client, connect, type ConnectOptions, readKeyFile } from "./client.ts";
export { discover, type DiscoverOptions } from "./discover.ts";
export {
  Anchor,
  type CallOptions,
  type LsOptions,
  type OpenOptions,
  type StreamCall,
} from "./anchor.ts";
export type { ElementAnchor } from "./types.ts";
export { ElementHandle } from "./handle.ts";
export { comparePaths, joinPath, parseGlob, splitPath } from "./path.ts";
export {
  EXEC_FAILED_STATUS,
  exitStatus,
  isStdinClosed,
  type OutputStream,
  Proc,
  type ProcCommand,
  type ProcState,
} from "./proc.ts";
export {
  parseSelector,
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
} from "./run.ts";
export { Chan, type ChanState } from "./chan.ts";
export { Nameserver, type NameserverState } from "./dns.ts";
export { Container, type ContainerRun, type ContainerState } from "./docker.ts";
export { type MemberEvent, Subscription, type SubscriptionState } from "./subscription.ts";
export { type Incoming, receive as recvStream } from "./_recv.ts";
export type { Glob } from "./path.ts";
