/**
 * `circuit version`, `circuit --version`, `circuit -version`: one line naming the
 * release, the Deno runtime and the platform.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };

/** This release of circuit: the `version` of deno.json. */
export const VERSION: string = denoJson.version;

/** The words on the command line that ask for the version. */
export const VERSION_WORDS: readonly string[] = ["version", "--version", "-version"];

/**
 * The version line.
 *
 * @returns `circuit VERSION (deno DENO_VERSION, OS/ARCH)`
 */
export function versionLine(): string {
  return `circuit ${VERSION} (deno ${Deno.version.deno}, ${Deno.build.os}/${Deno.build.arch})`;
}

/**
 * Print the version line to stdout.
 *
 * @returns exit code 0
 */
export function printVersion(): number {
  Deno.stdout.writeSync(new TextEncoder().encode(versionLine() + "\n"));
  return 0;
}
