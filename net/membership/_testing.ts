/**
 * The membership tests' assertions: the shared ones in `tests/_assert.ts`, re-exported so
 * the folder's tests import from one place beside them. Private to the folder.
 *
 * @module
 */

export { assert, assertEquals, assertThrows } from "../../tests/_assert.ts";
