/**
 * The element kinds this client has handles for: one line per kind, as
 * `elements/registry.ts` is on the server. A new kind is a handle class (an
 * {@linkcode ElementHandle}) plus one line here.
 *
 * @module
 */

import {
  CHAN_KIND,
  DNS_KIND,
  DOCKER_KIND,
  JOIN_KIND,
  LEAVE_KIND,
  PROC_KIND,
} from "../net/wire/mod.ts";
import { Chan } from "./chan.ts";
import { Container } from "./docker.ts";
import { Nameserver } from "./dns.ts";
import { Proc } from "./proc.ts";
import { Subscription } from "./subscription.ts";
import type { ElementAnchor } from "./types.ts";

/** Each kind name `make` takes, with the handle class of its elements. */
export const HANDLE_KINDS = {
  [PROC_KIND]: Proc,
  [CHAN_KIND]: Chan,
  [DNS_KIND]: Nameserver,
  [DOCKER_KIND]: Container,
  [JOIN_KIND]: Subscription,
  [LEAVE_KIND]: Subscription,
} as const;

/** A kind this client has a handle for. */
export type HandleKind = keyof typeof HANDLE_KINDS;

/** The handle of a kind's elements. */
export type HandleOf<K extends HandleKind> = InstanceType<typeof HANDLE_KINDS[K]>;

/**
 * Whether the client has a handle for an element kind (e.g. a kind `ls` listed).
 *
 * @param kind a kind name, as `make` and `ls -l` spell it
 * @returns true for a kind in {@linkcode HANDLE_KINDS}
 */
export function isHandleKind(kind: string): kind is HandleKind {
  return Object.hasOwn(HANDLE_KINDS, kind);
}

/**
 * A handle of a kind on an anchor; nothing is sent.
 *
 * @param kind the kind
 * @param anchor the anchor
 * @returns the handle
 */
export function handleFor<K extends HandleKind>(kind: K, anchor: ElementAnchor): HandleOf<K> {
  return new HANDLE_KINDS[kind](anchor) as HandleOf<K>;
}
