/**
 * Serves calls: runs operations on this server's namespace, forwards those aimed at
 * other servers over the mesh (streams included), and answers peers' membership calls.
 * A call forwarded once is never forwarded again.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { CircuitError } from "../net/errors.ts";
import type { RemoteInfo } from "../net/conn.ts";
import type { Handler, IncomingCall } from "../net/mux/mod.ts";
import { isServerName } from "../net/url.ts";
import {
  type ElementRequest,
  type LsRequest,
  type MakeRequest,
  Op,
  type SyncMessage,
} from "../net/wire/mod.ts";
import type {
  ClusterView,
  Element,
  ElementCall,
  ElementContext,
  ElementKind,
  ElementSettings,
} from "../elements/element.ts";
import type { KindLoader } from "../elements/registry.ts";
import type { Namespace } from "./namespace.ts";
import { listAnchors, listCluster } from "./listing.ts";
import type { Mesh } from "./mesh/mod.ts";
import type { MemberTable } from "./membership.ts";
import type { OpLog } from "./oplog.ts";

export { LS_FANOUT_TIMEOUT_MS } from "./listing.ts";

/** What the router serves from. */
export interface RouterOptions {
  /** This server's id. */
  id: string;
  /** This server's anchors. */
  namespace: Namespace;
  /** Other servers. */
  mesh: Mesh;
  /** Members. */
  table: MemberTable;
  /** Element kinds that `make` can create. */
  kinds: ReadonlyMap<string, KindLoader>;
  /** Settings handed to every element. */
  settings: Readonly<ElementSettings>;
  /** Operation log. */
  oplog: OpLog;
  /** Server log. */
  log: Logger;
}

interface InFlight {
  op: string;
  path: string;
  caller: string;
  since: number;
}

function pathOf(parts: string[]): string {
  return "/" + parts.join("/");
}

function checkPath(body: unknown): string[] {
  const path = (body as { path?: unknown } | null)?.path;
  if (!Array.isArray(path) || !path.every((p) => typeof p === "string" && p && !p.includes("/"))) {
    throw new CircuitError("bad request", "Request has a malformed path");
  }
  return path;
}

/** Serves every call that reaches this server. */
export class Router {
  #o: RouterOptions;
  #inflight = new Set<InFlight>();
  #cluster: ClusterView;
  /** Elements removed from the namespace that still serve their operations, by path. */
  #retired = new Map<string, Element>();

  /** @param options namespace, mesh, kinds, logs */
  constructor(options: RouterOptions) {
    this.#o = options;
    options.oplog.report = (m) => options.log.warn(m);
    const table = options.table;
    this.#cluster = {
      members: () => table.list().map((m) => `/X${m.id}`),
      subscribe: (fn) => table.subscribe((e) => fn({ type: e.type, path: `/X${e.member.id}` })),
    };
  }

  /**
   * Operations under way, for `stk`.
   *
   * @returns one entry per call
   */
  inflight(): Array<Record<string, unknown>> {
    const now = Date.now();
    return [...this.#inflight].map((f) => ({
      Op: f.op,
      Path: f.path,
      Caller: f.caller,
      Ms: now - f.since,
    }));
  }

  /**
   * The handler for one connection.
   *
   * @param remote who is on the other end
   * @returns the handler
   */
  handlerFor(remote: RemoteInfo): Handler {
    return (call) => this.#serve(call, remote);
  }

  async #serve(call: IncomingCall, remote: RemoteInfo): Promise<unknown> {
    const fromPeer = remote.role === "peer";
    if (call.op === Op.SYNC) {
      if (!fromPeer) throw new CircuitError("bad request", `"${call.op}" is for servers only`);
      const from = remote.peer ? `X${remote.peer.id}` : remote.addr;
      return this.#o.mesh.handleSync(call.body as SyncMessage, from);
    }
    const path = checkPath(call.body);
    const body = call.body as { caller?: unknown };
    const caller = fromPeer && typeof body.caller === "string"
      ? body.caller
      : `${remote.role} ${remote.addr}`;
    const f: InFlight = { op: call.op, path: pathOf(path), caller, since: Date.now() };
    this.#inflight.add(f);
    try {
      if (path.length === 0) return await this.#root(call, caller);
      if (!isServerName(path[0])) {
        throw new CircuitError(
          "not found",
          `No server "${path[0]}": a server name is X followed by 16 hex digits`,
        );
      }
      const id = path[0].slice(1);
      if (id === this.#o.id) return await this.#local(call, path, caller);
      if (fromPeer) throw new CircuitError("not found", `Server "${path[0]}" is not this server`);
      return await this.#forward(id, call, caller);
    } finally {
      this.#inflight.delete(f);
    }
  }

  async #root(call: IncomingCall, caller: string): Promise<unknown> {
    switch (call.op) {
      case Op.LS:
        return await listCluster({
          members: this.#o.table.list().map((m) => m.id),
          selfId: this.#o.id,
          namespace: this.#o.namespace,
          recursive: (call.body as LsRequest).recursive === true,
          caller,
          peer: async (id) => (await this.#o.mesh.peer(id)).mux,
          download: call.download,
        });
      case Op.PEEK:
        return null;
      case Op.MAKE:
        throw new CircuitError("bad request", "cannot create elements outside of servers");
      default: {
        // An element call names its own operation (stk, suicide, …) in the body.
        const op = call.op === Op.ELEMENT ? (call.body as { op?: unknown } | null)?.op : call.op;
        throw new CircuitError("bad request", `"${String(op)}" needs a server's path (/X…), not /`);
      }
    }
  }

  async #forward(id: string, call: IncomingCall, caller: string): Promise<unknown> {
    const conn = await this.#o.mesh.peer(id);
    // Streams are relayed message by message between the two connections; the reply
    // comes once they are through.
    return await conn.mux.forward(call, { ...(call.body as object), caller });
  }

  async #local(call: IncomingCall, path: string[], caller: string): Promise<unknown> {
    const rel = path.slice(1);
    const ns = this.#o.namespace;
    const where = pathOf(path);
    const ecall: ElementCall = {
      args: (call.body as ElementRequest).args,
      signal: call.signal,
      up: call.up,
      down: call.down,
      caller,
    };
    switch (call.op) {
      case Op.LS:
        return await listAnchors(
          ns,
          rel,
          (call.body as LsRequest).recursive === true,
          call.download,
        );
      case Op.PEEK:
        return ns.element(rel)?.peek() ?? null;
      case Op.SCRUB: {
        const el = ns.element(rel);
        if (!el) {
          this.#retired.delete(where);
          return null;
        }
        return await this.#logged(caller, "scrub", where, async () => {
          await el.scrub();
          ns.remove(rel, el);
          return null;
        });
      }
      case Op.MAKE: {
        const { kind, spec } = call.body as MakeRequest;
        const load = this.#o.kinds.get(String(kind));
        const k: ElementKind | undefined = load ? await load() : undefined;
        return await this.#logged(caller, `make ${kind}`, where, async () => {
          if (rel.length === 0) {
            throw new CircuitError("bad request", "cannot create elements on a server anchor");
          }
          if (!k) {
            throw new CircuitError(
              "bad request",
              `Making "${where}" failed: this server has no "${kind}" elements`,
            );
          }
          ns.reserve(rel);
          this.#retired.delete(where); // a new incarnation replaces a retired one
          let el: Element | null = null;
          const removeSelf = () => {
            if (!el || ns.element(rel) !== el) return;
            ns.remove(rel, el);
            this.#o.oplog.write({ caller: "server", op: "scrub", path: where, outcome: "ok" });
          };
          const retireSelf = (until: Promise<void>) => {
            const gone = el;
            if (!gone || ns.element(rel) !== gone) return;
            removeSelf();
            this.#retired.set(where, gone);
            const drop = () => {
              if (this.#retired.get(where) === gone) this.#retired.delete(where);
            };
            until.then(drop, drop);
          };
          const ctx: ElementContext = {
            path: where,
            serverId: this.#o.id,
            settings: this.#o.settings,
            removeSelf,
            retireSelf,
            cluster: this.#cluster,
          };
          try {
            el = await k.make(ctx, spec, ecall);
          } finally {
            ns.settle(rel, el);
          }
          return el.peek();
        });
      }
      case Op.ELEMENT: {
        const { op } = call.body as ElementRequest;
        const el = ns.element(rel) ?? this.#retired.get(where);
        if (!el) throw new CircuitError("not found", `No element at "${where}"`);
        // Queries the element declares change nothing and stay out of the operation log.
        if (el.queries?.has(String(op))) return await el.call(String(op), ecall);
        return await this.#logged(caller, String(op), where, () => el.call(String(op), ecall));
      }
      default:
        throw new CircuitError("bad request", `Unknown operation "${call.op}"`);
    }
  }

  /**
   * Run an operation, then log it. The outcome is the operation's alone: a line that
   * cannot be written now (a full disk) never turns an operation that happened into a
   * failure, nor a failure into another error; the log holds it back (see OpLog).
   */
  async #logged<T>(caller: string, op: string, path: string, fn: () => Promise<T>): Promise<T> {
    try {
      const v = await fn();
      this.#o.oplog.write({ caller, op, path, outcome: "ok" });
      return v;
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      this.#o.oplog.write({ caller, op, path, outcome: `error: ${msg}` });
      throw err;
    }
  }
}
