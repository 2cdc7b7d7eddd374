/**
 * The benchmark's section table: every section, in the order they run, each
 * `{ n, title, run(ctx) }` in a file of its own.
 *
 * @module
 */

import type { Section } from "../_context.ts";
import { bigClusterSection } from "./big_cluster.ts";
import { chansSection } from "./chans.ts";
import { coldCliSection } from "./cold_cli.ts";
import { dnsSection } from "./dns.ts";
import { idleSection } from "./idle.ts";
import { membershipSection } from "./membership/mod.ts";
import { peekSection } from "./peek.ts";
import { procStartSection } from "./proc_start.ts";
import { stdoutSection } from "./stdout.ts";
import { throughputSection } from "./throughput.ts";

/** Every section, by number. */
export const SECTIONS: readonly Section[] = [
  coldCliSection,
  peekSection,
  bigClusterSection,
  idleSection,
  throughputSection,
  procStartSection,
  stdoutSection,
  chansSection,
  dnsSection,
  membershipSection,
];
