/**
 * Small statistics for the benchmark: percentiles and a summary of samples.
 *
 * @module
 */

/** A summary of a set of samples, in the samples' unit. */
export interface Summary {
  /** Number of samples. */
  n: number;
  /** Arithmetic mean. */
  mean: number;
  /** Smallest sample. */
  min: number;
  /** Median (nearest-rank). */
  p50: number;
  /** 90th percentile (nearest-rank). */
  p90: number;
  /** 99th percentile (nearest-rank). */
  p99: number;
  /** Largest sample. */
  max: number;
}

/**
 * Nearest-rank percentile of samples already sorted ascending.
 *
 * @param sorted samples, ascending
 * @param p percentile in [0, 100]
 * @returns the sample at that rank, or NaN for no samples
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  if (p <= 0) return sorted[0];
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, rank) - 1];
}

/**
 * Summarise samples.
 *
 * @param samples the samples, any order (not modified)
 * @returns count, mean, min, p50, p90, p99, max
 */
export function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const mean = s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN;
  return {
    n: s.length,
    mean,
    min: s.length ? s[0] : NaN,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: s.length ? s[s.length - 1] : NaN,
  };
}

/**
 * Multiply every field of a summary but `n` (e.g. seconds → milliseconds).
 *
 * @param s a summary
 * @param factor the multiplier
 * @returns the scaled summary
 */
export function scale(s: Summary, factor: number): Summary {
  return {
    n: s.n,
    mean: s.mean * factor,
    min: s.min * factor,
    p50: s.p50 * factor,
    p90: s.p90 * factor,
    p99: s.p99 * factor,
    max: s.max * factor,
  };
}
