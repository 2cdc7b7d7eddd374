/**
 * Finding a server by multicast, for clients. The UDP code loads only when used, so
 * clients that dial a URL do not pay for it.
 *
 * @module
 */

import type { DiscoverOptions } from "../net/discovery.ts";

export type { DiscoverOptions };

/**
 * Ask a multicast group for a live server and return its URL. Only the client's own
 * query and the unicast answers to it are used; the client never joins the group.
 *
 * @example Connect to whichever server answers first
 * ```ts
 * import { connect, discover } from "@circuit/client";
 * const keyText = await Deno.readTextFile("/etc/circuit/key"); // base64
 * const keyBytes = Uint8Array.from(atob(keyText.trim()), (c) => c.charCodeAt(0));
 * const url = await discover("228.8.8.8:7711", { key: keyBytes, timeoutMs: 2000 });
 * await using client = await connect(url, { key: keyBytes });
 * ```
 *
 * @param group `GROUP:PORT`, e.g. `228.8.8.8:7711`
 * @param options key, timeout (default 3000 ms), signal, interfaces to ask on
 * @returns the URL of the first server that answered
 * @throws {CircuitError} `timeout` when nobody answers; `bad request` for a bad group
 */
export async function discover(group: string, options: DiscoverOptions = {}): Promise<string> {
  const m = await import("../net/discovery.ts");
  return await m.discover(group, options);
}
