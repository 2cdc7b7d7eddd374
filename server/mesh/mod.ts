/**
 * The mesh: dialed connections to other members, used for calls between servers and as
 * evidence of failure. The membership layer (SWIM, `net/membership/`) decides who is a
 * member; the mesh follows its join and leave events, carries its push-pull when a server
 * joins another, and hands it what TCP reveals: a port that refuses (the process is gone)
 * or a connection that went silent (suspect it).
 *
 * Each server keeps a connection to the next few members in id order (its watch ring,
 * `watchRing` in `ring.ts`), so every member is watched by that many others: when one is
 * killed, its watchers see the close, the redial is refused, and the death is sent to
 * every member within milliseconds. Other members are dialed when a call needs them and
 * closed once idle (`calls.ts`). (A connection to every member made a join cost a keyed
 * handshake per pair: at 25 members, most of the CPU of a join storm.) A member that
 * misses a probe while no connection to it is open is dialed then (`evidence.ts`). Failed
 * members are re-dialed now and then, so a healed partition merges again with no command
 * (`rejoiner.ts`). Connections live in one pool (`pool.ts`); `mesh.ts` composes them.
 *
 * Each server calls others only over connections it dialed itself, and serves calls on
 * connections others dialed, so two peers never race to pick one connection.
 *
 * ```ts ignore
 * import { Mesh } from "./mod.ts";
 * const mesh = new Mesh({ table, key, log });
 * mesh.serve({ membership, handler });
 * const conn = await mesh.peer(id);
 * ```
 *
 * @module
 */

export { Mesh, type MeshLinks, type MeshMembership, type MeshOptions } from "./mesh.ts";
export { type RingTiming, ringUpdateDelayMs, watchRing } from "./ring.ts";
export { type EvidenceSink, isGone } from "./evidence.ts";
export { JOIN_FIRST_WAIT_MS, Joiner, type JoinerOptions } from "./joiner.ts";
