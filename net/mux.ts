/**
 * Multiplexed calls and byte streams over one framed connection: the entry point kept at
 * its old path. The mux lives in `net/mux/`, one concern a file (see `net/mux/mod.ts`).
 *
 * @module
 */

export {
  type CallOptions,
  type Handler,
  type IncomingCall,
  INITIAL_WINDOW_BYTES,
  Mux,
  type MuxOptions,
  type MuxStats,
  type OutgoingCall,
  Tag,
} from "./mux/mod.ts";
