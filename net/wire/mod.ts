/**
 * The wire schema: every call the client and servers make, with its request and reply
 * shapes, and each element kind's own operations. Client and elements both import this
 * module, so each operation is named once and the protocol reads in one place.
 * Operation names are append-only; a removed one is never reused.
 *
 * ```ts ignore
 * import { ChanOp, type ElementRequest } from "./mod.ts";
 * const body: ElementRequest = { path: ["X317c2314a386a9db", "jobs"], op: ChanOp.CLOSE };
 * ```
 *
 * @module
 */

export {
  type ElementRequest,
  type LsEntry,
  type LsRequest,
  type MakeRequest,
  type MemberInfo,
  Op,
  type PathRequest,
  type SyncMessage,
} from "./call.ts";
export {
  BATCH_BYTES,
  BATCH_HEADER_BYTES,
  BATCH_MESSAGES,
  CHAN_KIND,
  ChanOp,
  type ChanOpName,
  type ChanSpec,
  type ChanState,
  decodeRecvMany,
  encodeRecvMany,
  encodeRecvManyHeader,
  parseRecvManyArgs,
  parseSendManyArgs,
  type RecvManyArgs,
  type SendManyReply,
} from "./chan.ts";
export {
  type OutputReply,
  PROC_KIND,
  type ProcCommand,
  ProcOp,
  type ProcOpName,
  type ProcSpec,
  type ProcState,
  type SignalArgs,
  type StdioOpName,
} from "./proc.ts";
export { type ContainerRun, type ContainerState, DOCKER_KIND, type DockerSpec } from "./docker.ts";
export {
  DNS_KIND,
  DnsOp,
  type DnsOpName,
  type NameserverSpec,
  type NameserverState,
  type SetArgs,
  type UnsetArgs,
} from "./dns.ts";
export {
  JOIN_KIND,
  LEAVE_KIND,
  SubscriptionOp,
  type SubscriptionReply,
  type SubscriptionState,
} from "./subscription.ts";
export { type JoinArgs, SERVER_KIND, ServerOp } from "./server.ts";
