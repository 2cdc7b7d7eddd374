/**
 * Channel elements.
 *
 * @module
 */

export { ChanElement, chanKind, type ChanPeek, parseCap } from "./chan.ts";
