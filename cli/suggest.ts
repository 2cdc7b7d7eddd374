/**
 * "Did you mean": the nearest known name to a mistyped command or flag.
 *
 * @module
 */

/** Largest edit distance at which a known name is offered as a suggestion. */
export const SUGGEST_MAX_DISTANCE = 2;

/**
 * Levenshtein distance (insertions, deletions, substitutions; a swap of two neighbours
 * counts as one, as in Damerau's variant).
 *
 * @param a one string
 * @param b the other
 * @returns the number of edits
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) d.push([i, ...new Array(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/**
 * The known name closest to what was typed: within {@linkcode SUGGEST_MAX_DISTANCE}
 * edits, or the only name it is a prefix of (at least two characters). Ties go to the
 * first in `known`.
 *
 * @param typed what the user wrote
 * @param known the valid names
 * @returns the suggestion, or undefined when nothing is close
 */
export function suggest(typed: string, known: Iterable<string>): string | undefined {
  const names = [...known];
  let best: string | undefined;
  let bestDistance = SUGGEST_MAX_DISTANCE + 1;
  for (const n of names) {
    const dist = editDistance(typed.toLowerCase(), n.toLowerCase());
    if (dist < bestDistance && dist < Math.max(n.length, typed.length)) {
      best = n;
      bestDistance = dist;
    }
  }
  if (best !== undefined) return best;
  const prefixed = typed.length >= 2 ? names.filter((n) => n.startsWith(typed)) : [];
  return prefixed.length === 1 ? prefixed[0] : undefined;
}
