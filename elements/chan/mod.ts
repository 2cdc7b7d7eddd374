/**
 * Channel elements: the rules as a pure state machine (`state.ts`) and the element that
 * performs its effects (`chan.ts`).
 *
 * ```ts
 * import { ChanMachine } from "./mod.ts";
 *
 * const chan = new ChanMachine(0); // a rendezvous
 * const sender = chan.id();
 * console.assert(chan.send(sender).length === 0); // waits for a receiver
 * ```
 *
 * @module
 */

export { ChanElement, chanKind, type ChanPeek, parseCap } from "./chan.ts";
export {
  type ChanEffect,
  type ChanFailure,
  ChanMachine,
  type MessageInfo,
  type RecvOptions,
  type SendOptions,
} from "./state.ts";
