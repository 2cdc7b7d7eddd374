/**
 * Test hosts in network namespaces: the lab shared with the benchmark, from
 * `bench/_netns.ts` (kept at this path for the tests that import it).
 *
 * @module
 */

export { type Host, Lan, type LanOptions, netnsUnavailable } from "../bench/_netns.ts";
