/**
 * `circuit keygen`.
 *
 * @module
 */

import { generateKey } from "../net/keys.ts";

/**
 * Print a new key.
 *
 * @returns exit code 0
 */
export function runKeygen(): Promise<number> {
  Deno.stdout.writeSync(new TextEncoder().encode(generateKey() + "\n"));
  return Promise.resolve(0);
}
