/**
 * The element kinds this build serves: one line per kind.
 *
 * @module
 */

import type { ElementKind } from "./element.ts";
import { procKind } from "./proc/mod.ts";
import { chanKind } from "./chan/mod.ts";
import { joinKind, leaveKind } from "./subscription/mod.ts";
import { dnsKind } from "./dns/mod.ts";
import { dockerKind } from "./docker/mod.ts";

/** Every element kind that `make` can create, by name. */
export const ELEMENT_KINDS: ReadonlyMap<string, ElementKind> = new Map<string, ElementKind>([
  ["proc", procKind],
  ["chan", chanKind],
  ["@join", joinKind],
  ["@leave", leaveKind],
  ["dns", dnsKind],
  ["docker", dockerKind],
]);
