/**
 * Cluster keys: 64 random bytes, stored as base64 in a file (the original's format).
 *
 * @module
 */

import { CircuitError } from "./errors.ts";

/** Length of a generated key, in bytes. */
export const KEY_BYTES = 64;

/** The fewest bytes a key may hold (a key file of `keygen` holds {@linkcode KEY_BYTES}). */
export const MIN_KEY_BYTES = 16;

/**
 * Make a new key and encode it as the key file's text: base64 of 64 bytes from the
 * system CSPRNG, 88 characters. `circuit keygen` prints this.
 *
 * @example Write a key file
 * ```ts ignore
 * await Deno.writeTextFile("/etc/circuit.key", generateKey() + "\n", { mode: 0o600 });
 * ```
 *
 * @returns the base64 text, without a newline
 */
export function generateKey(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(KEY_BYTES))));
}

/**
 * Decode a key file's text.
 *
 * @example
 * ```ts ignore
 * const key = parseKey(await Deno.readTextFile("/etc/circuit.key")); // 64 bytes
 * ```
 *
 * @param text the file's contents; surrounding white space is ignored
 * @returns the key bytes
 * @throws {CircuitError} `bad request` when it is not base64 of at least 16 bytes
 */
export function parseKey(text: string): Uint8Array {
  const t = text.trim();
  let raw: string;
  try {
    raw = atob(t);
  } catch {
    throw new CircuitError("bad request", "Reading key failed: the key file is not base64");
  }
  return checkKey(Uint8Array.from(raw, (c) => c.charCodeAt(0)), "Reading key failed: ");
}

/**
 * Check a raw key: bytes, at least {@linkcode MIN_KEY_BYTES} of them.
 *
 * @param key what was given as a key
 * @param prefix how the message starts (what failed)
 * @returns the key
 * @throws {CircuitError} `bad request` otherwise
 */
export function checkKey(key: unknown, prefix = ""): Uint8Array {
  if (!(key instanceof Uint8Array)) {
    throw new CircuitError("bad request", `${prefix}a key is bytes or the text of a key file`);
  }
  if (key.length < MIN_KEY_BYTES) {
    throw new CircuitError(
      "bad request",
      `${prefix}a key must hold at least ${MIN_KEY_BYTES} bytes, got ${key.length}`,
    );
  }
  return key;
}

/**
 * Read and decode a key file.
 *
 * @example Connect with the key of the cluster
 * ```ts ignore
 * const client = await connect(url, { key: await readKeyFile("/etc/circuit.key") });
 * ```
 *
 * @param path the file
 * @returns the key bytes
 * @throws {CircuitError} `bad request` when it cannot be read or decoded
 */
export async function readKeyFile(path: string): Promise<Uint8Array> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new CircuitError("bad request", `Reading key file "${path}" failed: ${why}`, {
      cause: err,
    });
  }
  try {
    return parseKey(text);
  } catch (err) {
    throw new CircuitError(
      "bad request",
      `Reading key file "${path}" failed: ${
        (err as Error).message.replace(/^Reading key failed: /, "")
      }`,
    );
  }
}
