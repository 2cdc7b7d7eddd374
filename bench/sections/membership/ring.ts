/**
 * Watching members until each lists what is awaited ({@linkcode Watch}), and a running
 * cluster with a view of each member ({@linkcode Ring}).
 *
 * @module
 */

import { POLL_MS, sleep } from "./common.ts";
import type { Lab } from "./lab.ts";
import type { Member, StartHow, System, View } from "./systems.ts";

/** Polls views, each in its own loop, until each one's list satisfies `ok`. */
export class Watch {
  /** Per slot: ms after t0 when its list first satisfied `ok`, or null. */
  readonly at: (number | null)[];
  /** Per slot: the size of its last list. */
  readonly seen: number[];
  pollMs = POLL_MS;
  #stopped = false;
  #done: () => void = () => {};
  #finished: Promise<void>;

  constructor(
    slots: number,
    readonly t0: number,
    readonly ok: (slot: number, names: Set<string>) => boolean,
  ) {
    this.at = new Array(slots).fill(null);
    this.seen = new Array(slots).fill(0);
    this.#finished = new Promise((r) => (this.#done = r));
    if (slots === 0) this.#done();
  }

  /** Start polling a slot's view. */
  track(slot: number, view: View): void {
    void (async () => {
      while (!this.#stopped && this.at[slot] === null) {
        try {
          const names = await view.list();
          this.seen[slot] = names.size;
          if (this.ok(slot, names)) {
            this.at[slot] = performance.now() - this.t0;
            if (this.at.every((x) => x !== null)) this.#done();
            break;
          }
        } catch { /* not answering yet */ }
        await sleep(this.pollMs);
      }
    })();
  }

  /**
   * Wait until every slot is satisfied.
   *
   * @param timeoutMs give up after this long (from now)
   * @param what for the error
   * @returns ms after t0 until the last and the first slot were satisfied
   */
  async wait(timeoutMs: number, what: string): Promise<{ last: number; first: number }> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), timeoutMs)));
    const ok = await Promise.race([this.#finished.then(() => true), timeout]);
    clearTimeout(timer);
    this.#stopped = true;
    if (!ok) {
      throw new Error(
        `${what}: not within ${(timeoutMs / 1000).toFixed(0)} s; lists had ${
          this.seen.join(",")
        } members`,
      );
    }
    const at = this.at as number[];
    return { last: Math.max(...at), first: Math.min(...at) };
  }
}

/** Names a member set must list exactly. */
export function exactly(names: string[]): (slot: number, got: Set<string>) => boolean {
  return (_slot, got) => got.size === names.length && names.every((n) => got.has(n));
}

/** A running cluster: members by host, with a view of each. */
export class Ring {
  readonly members = new Map<number, { m: Member; v: View }>();

  constructor(readonly sys: System, readonly lab: Lab) {}

  names(): string[] {
    return [...this.members.values()].map((x) => x.m.name);
  }

  /** Wait until every member lists exactly the members of the ring. */
  async converged(timeoutMs = 60_000): Promise<number> {
    const list = [...this.members.values()];
    const w = new Watch(list.length, performance.now(), exactly(this.names()));
    list.forEach((x, i) => w.track(i, x.v));
    return (await w.wait(timeoutMs, `${this.sys.label} to converge to ${list.length}`)).last;
  }

  async add(host: number, how: StartHow): Promise<Member> {
    const m = await this.sys.start(this.lab, host, how, true);
    try {
      this.members.set(host, { m, v: await this.sys.view(m) });
    } catch (err) {
      await this.lab.stop([m.svc]);
      throw err;
    }
    return m;
  }

  /** Stop a member (its view closed); `kill` skips the graceful stop. */
  async remove(host: number, kill = false): Promise<void> {
    const x = this.members.get(host);
    if (!x) return;
    this.members.delete(host);
    x.v.close();
    if (kill) this.lab.signal(x.m.svc.pid, "SIGKILL");
    await this.lab.stop([x.m.svc]);
  }

  closeViews(): void {
    for (const x of this.members.values()) x.v.close();
  }

  async stop(): Promise<void> {
    this.closeViews();
    await this.lab.stop([...this.members.values()].map((x) => x.m.svc));
    this.members.clear();
  }
}
