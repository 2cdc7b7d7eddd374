/**
 * Delivering one message to a receiver so that it is consumed only once the receiver
 * has it all: the server writes the message to the call's download and closes it; the
 * receiver closes its upload to acknowledge. A receiver that goes away before the
 * acknowledgement consumes nothing.
 *
 * @module
 */

import type { ElementCall } from "./element.ts";

/**
 * Send a message to a receiver and wait for its acknowledgement.
 *
 * @param call the receiver's call (with upload and download)
 * @param write writes the message to the receiver's stream
 * @param whole the message itself when it is small and at hand: sent whole (with no
 *   stream objects when it fits the credit; same bytes, same acknowledgement)
 * @returns true when the receiver acknowledged, false when it went away first
 */
export async function deliver(
  call: ElementCall,
  write: (w: WritableStreamDefaultWriter<Uint8Array>) => Promise<void>,
  whole?: Uint8Array | null,
): Promise<boolean> {
  const { up, down } = call;
  if (!down || !up) return false;
  if (whole) {
    try {
      await down.send(whole);
    } catch {
      down.reset();
      return false;
    }
  } else {
    const w = down.stream.getWriter();
    try {
      await write(w);
      await w.close();
    } catch {
      await w.abort().catch(() => {});
      return false;
    }
  }
  // The acknowledgement: the receiver ends its upload, empty, once it has read everything.
  return (await up.acked()) && !call.signal.aborted;
}
