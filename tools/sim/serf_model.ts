/**
 * The model behind serf's convergence simulator (serf.io, "Gossip Convergence"): an
 * expected-value epidemic. Each gossip interval every informed member sends to `fanout`
 * random members; a message is lost with probability `loss`; an uninformed member stays
 * uninformed with probability `(1 − fanout·(1 − loss)/n)^informed`.
 *
 * @module
 */

/**
 * Time until the expected informed fraction reaches `target`.
 *
 * @param n members
 * @param options gossip interval, fanout, loss, target fraction
 * @returns ms (Infinity when it never gets there within 10,000 rounds)
 */
export function serfConvergenceMs(
  n: number,
  options: { intervalMs: number; fanout: number; loss: number; target: number },
): number {
  let informed = 1;
  const p = Math.min(1, (options.fanout * (1 - options.loss)) / n);
  for (let round = 1; round <= 10_000; round++) {
    informed += (n - informed) * (1 - Math.pow(1 - p, informed));
    if (informed >= options.target * n) return round * options.intervalMs;
  }
  return Infinity;
}
