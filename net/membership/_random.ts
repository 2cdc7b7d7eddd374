/**
 * Random choices with an injectable source, so tests can fix them. Private to the
 * membership folder.
 *
 * @module
 */

/**
 * A shuffled copy (Fisher–Yates).
 *
 * @param items what to shuffle
 * @param random a number in [0, 1)
 * @returns the shuffled copy
 */
export function shuffle<T>(items: readonly T[], random: () => number = Math.random): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * Up to `k` distinct random items.
 *
 * @param items where to choose from
 * @param k how many
 * @param random a number in [0, 1)
 * @returns the chosen items
 */
export function pickRandom<T>(
  items: readonly T[],
  k: number,
  random: () => number = Math.random,
): T[] {
  const n = items.length;
  if (k <= 0 || n === 0) return [];
  if (2 * k >= n) return shuffle(items, random).slice(0, k);
  // Few of many (the common case: 3 of hundreds): draw distinct indices, O(k) not O(n).
  const picked = new Set<number>();
  while (picked.size < k) picked.add(Math.floor(random() * n));
  return [...picked].map((i) => items[i]);
}
