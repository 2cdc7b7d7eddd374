/**
 * The mesh moved to `server/mesh/` and its constants to `server/config.ts`; this module
 * keeps the old path working.
 *
 * @module
 */

export { Mesh, type MeshMembership, type MeshOptions } from "./mesh/mod.ts";
export {
  CALL_IDLE_MS,
  DISCOVER_JITTER_MS,
  MAX_REJOINING,
  PEER_KEEPALIVE,
  WATCHED,
} from "./config.ts";
