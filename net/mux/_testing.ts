/**
 * The mux tests' assertions: the shared ones in `tests/_assert.ts`, re-exported so the
 * folder's tests import from one place beside them. Private to the folder.
 *
 * @module
 */

export { assert, assertEquals } from "../../tests/_assert.ts";
/** The old name of {@linkcode assertEquals} (kept until no test here uses it). */
export { assertEquals as assertSame } from "../../tests/_assert.ts";
