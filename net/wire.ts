/**
 * The old path of the wire schema, kept so modules that import it keep working; the
 * schema is `net/wire/mod.ts` (routed calls in `net/wire/call.ts`, each kind's own
 * operations beside it). New code imports `net/wire/mod.ts`.
 *
 * @module
 */

export {
  BATCH_BYTES,
  BATCH_HEADER_BYTES,
  BATCH_MESSAGES,
  type ElementRequest,
  type LsEntry,
  type LsRequest,
  type MakeRequest,
  type MemberInfo,
  Op,
  type PathRequest,
  type SendManyReply,
  type SyncMessage,
} from "./wire/mod.ts";
