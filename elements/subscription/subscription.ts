/**
 * Subscription elements: the cluster's join or leave events, one `recv` each.
 *
 * `@join` starts with every current member (its own server included) and then gets one
 * event per server that joins; `@leave` gets one per server that leaves or fails. The
 * queue is bounded; past the bound the oldest events are dropped and counted, never
 * silently. An event is consumed only when its receiver acknowledges it, so a `recv`
 * that dies steals nothing.
 *
 * @module
 */

import { CircuitError } from "../../net/errors.ts";
import {
  JOIN_KIND,
  LEAVE_KIND,
  SubscriptionOp,
  type SubscriptionReply,
  type SubscriptionState,
} from "../../net/wire/mod.ts";
import type { Element, ElementCall, ElementContext, ElementKind } from "../element.ts";
import { deliver } from "../delivery.ts";

/** Events held per subscription before the oldest are dropped. */
export const SUBSCRIPTION_QUEUE_EVENTS = 4096;

/** Which events. */
export type Source = "join" | "leave";

/** The `peek` shape (the wire's `SubscriptionState`). */
export type SubscriptionPeek = SubscriptionState;

export type { SubscriptionReply };

interface Receiver {
  call: ElementCall;
  wake(): void;
  fail(err: CircuitError): void;
}

/** A subscription. */
export class SubscriptionElement implements Element {
  /** `ls -l` kind: `@join` or `@leave`. */
  readonly kind: string;
  #source: Source;
  #queue: string[] = [];
  #bound: number;
  #droppedUnreported = 0;
  #closed = false;
  #receivers: Receiver[] = [];
  #unsubscribe: () => void;

  /**
   * @param ctx the cluster view
   * @param source join or leave events
   * @param boundEvents queue bound
   */
  constructor(ctx: ElementContext, source: Source, boundEvents = SUBSCRIPTION_QUEUE_EVENTS) {
    this.#source = source;
    this.kind = KIND_NAMES[source];
    this.#bound = boundEvents;
    if (source === "join") { for (const p of ctx.cluster.members()) this.#push(p); }
    this.#unsubscribe = ctx.cluster.subscribe((e) => {
      if (e.type === source) this.#push(e.path);
    });
  }

  /**
   * The contract's exact keys; dropped events are reported by `recv` (and on stderr).
   *
   * @returns `{Source, Pending, Closed}`
   */
  peek(): SubscriptionPeek {
    return { Source: this.#source, Pending: this.#queue.length, Closed: this.#closed };
  }

  /** Stop listening; waiting receivers fail with `closed`. */
  scrub(): void {
    this.#closed = true;
    this.#unsubscribe();
    for (const r of this.#receivers) r.fail(new CircuitError("closed", "subscription closed"));
    this.#receivers = [];
    this.#queue = [];
  }

  /**
   * `recv`: the next event's path (download, acknowledged by closing the upload).
   *
   * @param op the operation
   * @param call its streams
   * @returns `{Dropped}`
   */
  async call(op: string, call: ElementCall): Promise<unknown> {
    if (op !== SubscriptionOp.RECV) {
      throw new CircuitError("bad request", `A subscription has no operation "${op}"`);
    }
    for (;;) {
      if (this.#closed) throw new CircuitError("closed", "subscription closed");
      const event = this.#queue.shift();
      if (event !== undefined) {
        const bytes = new TextEncoder().encode(event + "\n"); // as `recv` prints it
        if (await deliver(call, (w) => w.write(bytes), bytes)) {
          const reply: SubscriptionReply = { Dropped: this.#droppedUnreported };
          this.#droppedUnreported = 0;
          return reply;
        }
        if (!this.#closed) this.#queue.unshift(event); // the receiver went away
        this.#receivers.shift()?.wake();
        throw new CircuitError("aborted", "The receiver went away");
      }
      await this.#wait(call);
    }
  }

  #push(path: string): void {
    if (this.#closed) return;
    this.#queue.push(path);
    if (this.#queue.length > this.#bound) {
      this.#queue.shift();
      this.#droppedUnreported++;
    }
    this.#receivers.shift()?.wake();
  }

  #wait(call: ElementCall): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const r: Receiver = {
        call,
        wake: () => {
          call.signal.removeEventListener("abort", onAbort);
          resolve();
        },
        fail: (err) => {
          call.signal.removeEventListener("abort", onAbort);
          reject(err);
        },
      };
      const onAbort = () => {
        const i = this.#receivers.indexOf(r);
        if (i >= 0) this.#receivers.splice(i, 1);
        reject(new CircuitError("aborted", "The caller went away"));
      };
      if (call.signal.aborted) return onAbort();
      call.signal.addEventListener("abort", onAbort, { once: true });
      this.#receivers.push(r);
    });
  }
}

/** The kind name of each source. */
const KIND_NAMES: Readonly<Record<Source, string>> = { join: JOIN_KIND, leave: LEAVE_KIND };

function kindFor(source: Source): ElementKind {
  return {
    name: KIND_NAMES[source],
    make(ctx: ElementContext): Promise<Element> {
      return Promise.resolve(new SubscriptionElement(ctx, source));
    },
  };
}

/** The `@join` element kind. */
export const joinKind: ElementKind = kindFor("join");
/** The `@leave` element kind. */
export const leaveKind: ElementKind = kindFor("leave");
