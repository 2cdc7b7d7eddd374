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
 * Stream a message to a receiver and wait for its acknowledgement.
 *
 * @param call the receiver's call (with upload and download)
 * @param write writes the message to the receiver's stream
 * @param whole the message itself when it is small and at hand: sent with no stream
 *   objects when the call allows it (same bytes, same acknowledgement)
 * @returns true when the receiver acknowledged, false when it went away first
 */
export async function deliver(
  call: ElementCall,
  write: (w: WritableStreamDefaultWriter<Uint8Array>) => Promise<void>,
  whole?: Uint8Array | null,
): Promise<boolean> {
  if (whole && call.uploadEnded && call.sendDownload?.(whole)) {
    return (await call.uploadEnded()) && !call.signal.aborted;
  }
  if (!call.download || !call.upload) return false;
  const w = call.download.getWriter();
  try {
    await write(w);
    await w.close();
    // The acknowledgement: the receiver ends its upload once it has read everything.
    const r = await call.upload.getReader().read();
    return r.done === true && !call.signal.aborted;
  } catch {
    await w.abort().catch(() => {});
    return false;
  }
}
