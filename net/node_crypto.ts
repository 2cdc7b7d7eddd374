/**
 * `node:crypto`, loaded on first need. Importing it costs 15–30 ms of start-up here (it
 * brings up much of Deno's Node layer), which a command on an unkeyed loopback cluster
 * never needs. Keyed code awaits {@linkcode loadNodeCrypto} once, before its first
 * cryptographic step, and then calls {@linkcode nodeCrypto} synchronously.
 *
 * @module
 */

/** The `node:crypto` module. */
export type NodeCrypto = typeof import("node:crypto");

let loaded: NodeCrypto | undefined;
let loading: Promise<NodeCrypto> | undefined;

/**
 * Load `node:crypto` (once; later calls return the same promise).
 *
 * @returns the module
 */
export function loadNodeCrypto(): Promise<NodeCrypto> {
  return loading ??= import("node:crypto").then((m) => loaded = m);
}

/**
 * The loaded `node:crypto`.
 *
 * @returns the module
 * @throws {Error} when {@linkcode loadNodeCrypto} has not finished: a programming error
 */
export function nodeCrypto(): NodeCrypto {
  if (!loaded) throw new Error("node:crypto is used before loadNodeCrypto() finished");
  return loaded;
}
