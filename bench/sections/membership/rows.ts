/**
 * How the membership section writes its rows: buffered so circuit's row comes before
 * serf's, goals "≤ the figure and ahead of serf", number formats, and a
 * measurement whose failure becomes a row.
 *
 * @module
 */

import type { SectionContext } from "../../_context.ts";
import type { FigureInput, Goal } from "../../_report.ts";
import { errText, TITLE } from "./common.ts";

/** Figures buffered so circuit's row comes before serf's for each measurement. */
export class Rows {
  #rows: FigureInput[] = [];
  constructor(readonly ctx: SectionContext) {}
  /** Buffer a row of the section. */
  add(f: Omit<FigureInput, "section">): void {
    this.#rows.push({ section: TITLE, ...f });
  }
  /** Record the buffered rows, in order. */
  flush(): void {
    for (const r of this.#rows) this.ctx.add(r);
    this.#rows = [];
  }
}

/** The goal `≤ fixed` and, when serf measured, also `≤ serf` ("ahead of serf"). */
export function goalOf(fixed: number | null, serf: number | null | undefined): Goal | undefined {
  const v = [fixed, serf ?? null].filter((x): x is number => x !== null && Number.isFinite(x));
  return v.length ? { op: "<=", value: Number(Math.min(...v).toPrecision(4)) } : undefined;
}

/** The goal's words for the notes. */
export function goalNote(
  fixed: number | null,
  serf: number | null | undefined,
  unit: string,
): string {
  const parts: string[] = [];
  if (fixed !== null) parts.push(`≤ ${fixed} ${unit} (issue)`);
  if (serf !== null && serf !== undefined) parts.push(`ahead of serf (${fmt(serf)} ${unit})`);
  return parts.length ? `goal: ${parts.join(" and ")}` : "";
}

/** Milliseconds for notes. */
export function ms(v: number | undefined): string {
  return v === undefined ? "?" : v.toFixed(0);
}

/** A number for notes, to about four significant digits. */
export function fmt(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

/**
 * Run a measurement; a failure is a progress line and a null row `NAME (failed)`.
 *
 * @returns its result, or null when it failed
 */
export async function attempt<T>(
  ctx: SectionContext,
  rows: Rows,
  name: string,
  fn: () => Promise<T>,
): Promise<T | null> {
  try {
    return await fn();
  } catch (err) {
    ctx.progress(`${name} failed: ${errText(err)}`);
    rows.add({ name: `${name} (failed)`, value: null, unit: "", notes: errText(err) });
    return null;
  }
}
