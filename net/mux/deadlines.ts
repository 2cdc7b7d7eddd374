/**
 * Call time limits. Calls share one timer, so a call costs no timer operation unless it
 * is due before every call already in flight (a timer set and cleared per call was a
 * tenth of a small call's CPU).
 *
 * @module
 */

/** Something with a time limit. */
export interface Due {
  /** When it is due (`performance.now()` ms); Infinity for never. */
  deadline: number;
}

/**
 * Expire what is due among `items` at `now`.
 *
 * @param items the calls in flight, by id
 * @param now the time (`performance.now()` ms)
 * @param expire called for each item due
 * @returns the earliest deadline of those not due, or Infinity
 */
export function expireDue<K, T extends Due>(
  items: Map<K, T>,
  now: number,
  expire: (key: K, item: T) => void,
): number {
  let next = Infinity;
  for (const [key, item] of [...items]) {
    if (item.deadline <= now) expire(key, item);
    else if (item.deadline < next) next = item.deadline;
  }
  return next;
}

/** One timer for every call's time limit, armed for the earliest. */
export class DeadlineTimer {
  #at = Infinity;
  #timer: number | undefined;
  #onDue: () => void;

  /** @param onDue called when the timer fires; it schedules the next deadline itself */
  constructor(onDue: () => void) {
    this.#onDue = onDue;
  }

  /**
   * Make sure the timer fires by `at`: re-arm only when `at` is before the armed time.
   *
   * @param at when (`performance.now()` ms)
   */
  schedule(at: number): void {
    if (at >= this.#at) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#at = at;
    this.#timer = setTimeout(
      () => this.#fire(),
      Math.max(0, at - performance.now()),
    ) as unknown as number;
    Deno.unrefTimer(this.#timer); // the connection keeps the process alive, not this
  }

  /** Stop the timer. */
  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#at = Infinity;
  }

  #fire(): void {
    this.#timer = undefined;
    this.#at = Infinity;
    this.#onDue();
  }
}
