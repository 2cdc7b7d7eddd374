/**
 * Multiplexed calls and byte streams over one framed connection: the entry point kept at
 * its old path. The mux lives in `net/mux/`, one concern a file (see `net/mux/mod.ts`).
 *
 * @module
 */

export {
  type Body,
  type CallOptions,
  type Handler,
  type Inbound,
  type IncomingCall,
  INITIAL_WINDOW_BYTES,
  Mux,
  type MuxOptions,
  type MuxStats,
  type Outbound,
  type OutgoingCall,
  Tag,
} from "./mux/mod.ts";
