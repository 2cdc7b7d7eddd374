/**
 * Process elements.
 *
 * @module
 */

export { type Phase, ProcElement, procKind, type ProcPeek } from "./proc.ts";
export type { StreamReply } from "../stdio.ts";
export { type Cmd, parseCmd } from "./spec.ts";
export { parseSignal, SIGNALS } from "./signals.ts";
