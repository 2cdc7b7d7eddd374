/**
 * The clock the membership layer uses; it lives in `net/clock.ts` now, shared with the
 * server's mesh. Kept so the membership files' imports stay as they are.
 *
 * @module
 */

export { type Clock, flush, ManualClock, SYSTEM_CLOCK } from "../clock.ts";
