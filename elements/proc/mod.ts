/**
 * Process elements.
 *
 * @module
 */

export { type Phase, ProcElement, procKind, type ProcPeek, type StreamReply } from "./proc.ts";
export { type Cmd, parseCmd } from "./spec.ts";
export { parseSignal, SIGNALS } from "./signals.ts";
