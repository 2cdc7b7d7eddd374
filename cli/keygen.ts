/**
 * `circuit keygen`.
 *
 * @module
 */

import { generateKey } from "../mod.ts";
import { UsageError } from "./args.ts";

/**
 * Print a new key.
 *
 * @param args the arguments after `keygen` (there must be none)
 * @returns exit code 0
 * @throws {UsageError} when given arguments
 */
export function runKeygen(args: string[]): Promise<number> {
  if (args.length > 0) throw new UsageError("keygen takes no arguments");
  Deno.stdout.writeSync(new TextEncoder().encode(generateKey() + "\n"));
  return Promise.resolve(0);
}
