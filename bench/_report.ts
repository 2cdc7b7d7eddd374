/**
 * The benchmark report: figures with goals, written as JSON and Markdown.
 *
 * @module
 */

/** A goal a figure is held to. */
export interface Goal {
  /** `<=`: at most `value`; `>=`: at least `value`. */
  op: "<=" | ">=";
  /** The limit, in the figure's unit. */
  value: number;
}

/** One measured number. */
export interface Figure {
  /** Which measurement it belongs to, e.g. `1. Cold CLI`. */
  section: string;
  /** What was measured. */
  name: string;
  /** The number, or null when it was skipped or failed. */
  value: number | null;
  /** Its unit, e.g. `ms`, `µs`, `MB/s`. */
  unit: string;
  /** The goal, when there is one. */
  goal?: Goal;
  /** Whether the goal was met; null without a goal or a value. */
  pass: boolean | null;
  /** How it was measured, caveats, context. */
  notes: string;
}

/** What {@linkcode figure} takes. */
export interface FigureInput {
  /** Which measurement it belongs to. */
  section: string;
  /** What was measured. */
  name: string;
  /** The number, or null when skipped. */
  value: number | null;
  /** Its unit. */
  unit: string;
  /** The goal, when there is one. */
  goal?: Goal;
  /** How it was measured. */
  notes?: string;
}

/**
 * Make a figure, judging it against its goal.
 *
 * @param f section, name, value, unit, goal, notes
 * @returns the figure with `pass` set
 */
export function figure(f: FigureInput): Figure {
  let pass: boolean | null = null;
  if (f.goal && f.value !== null && Number.isFinite(f.value)) {
    pass = f.goal.op === "<=" ? f.value <= f.goal.value : f.value >= f.goal.value;
  }
  return {
    section: f.section,
    name: f.name,
    value: f.value !== null && Number.isFinite(f.value) ? f.value : null,
    unit: f.unit,
    ...(f.goal ? { goal: f.goal } : {}),
    pass,
    notes: f.notes ?? "",
  };
}

/** The whole report. */
export interface Report {
  /** When the run started (ISO 8601). */
  started: string;
  /** Wall time of the whole run, in seconds. */
  durationS: number;
  /** Whether `--quick` was given. */
  quick: boolean;
  /** The sections run with `--only`; absent when all ran. */
  only?: number[];
  /** Machine, runtime and tool facts. */
  environment: Record<string, string | number | boolean>;
  /** Every figure, in order. */
  figures: Figure[];
  /** Things worth knowing that are not figures (skipped peers, observations). */
  notes: string[];
}

/**
 * Format a number for a table: about four significant digits, no exponent.
 *
 * @param v the number, or null
 * @returns the text (`—` for null)
 */
export function formatNumber(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return "—";
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (a >= 1000) return Math.round(v).toLocaleString("en-US");
  if (a >= 100) return v.toFixed(1);
  if (a >= 10) return v.toFixed(2);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}

/**
 * Render the report as Markdown: environment, one table per section, notes.
 *
 * @param r the report
 * @returns the Markdown text
 */
export function toMarkdown(r: Report): string {
  const lines: string[] = [];
  const only = r.only ? ` (--only ${r.only.join(",")})` : "";
  lines.push(`# circuit benchmark${r.quick ? " (--quick)" : ""}${only}`, "");
  lines.push(`Started ${r.started}, took ${r.durationS.toFixed(1)} s.`, "");
  for (const [k, v] of Object.entries(r.environment)) lines.push(`- ${k}: ${v}`);
  lines.push("");
  const sections = [...new Set(r.figures.map((f) => f.section))];
  for (const s of sections) {
    lines.push(`## ${s}`, "");
    lines.push("| Figure | Value | Unit | Goal | Pass | Notes |");
    lines.push("| --- | ---: | --- | --- | --- | --- |");
    for (const f of r.figures.filter((f) => f.section === s)) {
      const goal = f.goal ? `${f.goal.op === "<=" ? "≤" : "≥"} ${f.goal.value}` : "";
      const pass = f.pass === null ? "" : f.pass ? "pass" : "**FAIL**";
      lines.push(
        `| ${cell(f.name)} | ${formatNumber(f.value)} | ${f.unit} | ${goal} | ${pass} | ${
          cell(f.notes)
        } |`,
      );
    }
    lines.push("");
  }
  if (r.notes.length) {
    lines.push("## Notes", "");
    for (const n of r.notes) lines.push(`- ${n}`);
    lines.push("");
  }
  return lines.join("\n");
}

/**
 * Write `report.json` and `report.md` into a directory (created if needed).
 *
 * @param dir the output directory
 * @param r the report
 * @returns the Markdown text
 */
export async function writeReport(dir: string, r: Report): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const md = toMarkdown(r);
  await Deno.writeTextFile(`${dir}/report.json`, JSON.stringify(r, null, 2) + "\n");
  await Deno.writeTextFile(`${dir}/report.md`, md);
  return md;
}
