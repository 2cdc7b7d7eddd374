/**
 * The element kinds this build serves: one line per kind. Each kind loads the first time
 * something makes one, so an idle server carries none of their code.
 *
 * @module
 */

import type { ElementKind } from "./element.ts";

/** Loads an element kind. */
export type KindLoader = () => Promise<ElementKind>;

/** Every element kind that `make` can create, by name. */
export const ELEMENT_KINDS: ReadonlyMap<string, KindLoader> = new Map<string, KindLoader>([
  ["proc", async () => (await import("./proc/mod.ts")).procKind],
  ["chan", async () => (await import("./chan/mod.ts")).chanKind],
  ["@join", async () => (await import("./subscription/mod.ts")).joinKind],
  ["@leave", async () => (await import("./subscription/mod.ts")).leaveKind],
  ["dns", async () => (await import("./dns/mod.ts")).dnsKind],
  ["docker", async () => (await import("./docker/mod.ts")).dockerKind],
]);
