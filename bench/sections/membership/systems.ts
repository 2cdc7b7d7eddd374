/**
 * The two systems the membership section compares: circuit servers and serf agents, each
 * started in a host's namespace and listed by an observer over one connection per member.
 *
 * @module
 */

import { type Client, connect } from "../../../mod.ts";
import { CLI, type Service, spawnDaemon, spawnService } from "../../_cluster.ts";
import type { SectionContext } from "../../_context.ts";
import { SerfRpc } from "../../_serf_rpc.ts";
import { GROUP, POLL_MS, SERF_PORT, SERF_RPC_PORT, sleep } from "./common.ts";
import type { Lab } from "./lab.ts";

/** One running member: a circuit server or a serf agent. */
export interface Member {
  /** Index of its host in the lab. */
  host: number;
  /** How other members list it: the circuit id (16 hex digits) or the serf node name. */
  name: string;
  /** The process (not the `ip netns exec` wrapper: that execs). */
  svc: Service;
  /** circuit: the URL. serf: `ADDR:7946`. */
  addr: string;
  /** circuit: the var directory. */
  varDir?: string;
}

/** An observer's connection to one member. */
export interface View {
  /** The names this member lists as live members (itself included). */
  list(): Promise<Set<string>>;
  /** Tell this member to join the cluster of another. */
  join(other: Member): Promise<void>;
  /** circuit: the server's `stk`. */
  stk?(): Promise<Record<string, unknown>>;
  close(): void;
}

/** How members start. */
export interface StartHow {
  /** Join this member at start (`-j URL`, `-join ADDR`). */
  join?: Member;
  /** circuit only: `--discover`. */
  discover?: boolean;
  /** A `taskset -c` CPU list. */
  pin?: string;
}

/** A system under test: how to start a member and how to watch one. */
export interface System {
  label: "circuit" | "serf";
  /**
   * Start a member on a host.
   *
   * @param waitUp circuit: wait for the URL (always). serf: wait until its RPC answers.
   */
  start(lab: Lab, host: number, how: StartHow, waitUp: boolean): Promise<Member>;
  /** Connect an observer, retrying until `deadline` (performance.now()). */
  view(m: Member, deadline?: number): Promise<View>;
}

/**
 * circuit: `circuit start` in the host's namespace, keyed, listed with the library.
 *
 * @param ctx the run's context (its temp directory and key file)
 * @param key the key the observers dial with
 * @returns the system
 */
export function circuitSystem(ctx: SectionContext, key: Uint8Array): System {
  let seq = 0;
  return {
    label: "circuit",
    async start(lab, host, how) {
      const h = lab.hosts[host];
      const varDir = `${ctx.tmp}/membership/${h.ns}-${seq++}`;
      const args = ["run", "-A", CLI, "start", "--var", varDir, "--if", h.iface];
      args.push("--hmac", ctx.keyFile);
      if (how.discover) args.push("--discover", GROUP);
      if (how.join) args.push("-j", how.join.addr);
      const pre = ["netns", "exec", h.ns, ...(how.pin ? ["taskset", "-c", how.pin] : [])];
      const svc = await spawnService({ cmd: "ip", args: [...pre, Deno.execPath(), ...args] });
      lab.track(svc);
      const id = /\/Q([0-9a-f]{16})\/?$/.exec(svc.line)?.[1];
      if (!id) {
        await lab.stop([svc]);
        throw new Error(`circuit start printed "${svc.line}", not a URL`);
      }
      return { host, name: id, svc, addr: svc.line, varDir };
    },
    async view(m, deadline = performance.now() + 10_000) {
      let client: Client;
      for (;;) {
        try {
          client = await connect(m.addr, { key, timeoutMs: 10_000 });
          break;
        } catch (err) {
          if (performance.now() > deadline) throw err;
          await sleep(POLL_MS);
        }
      }
      const root = client.walk("/");
      const self = client.walk(`/X${m.name}`);
      return {
        list: async () => new Set((await root.ls()).map((e) => e.path.slice(2))),
        join: (other) => self.join(other.addr),
        stk: () => self.stk(),
        close: () => client.close(),
      };
    },
  };
}

/**
 * serf: `serf agent` in the host's namespace, encrypted, listed with its RPC.
 *
 * @param encryptKey the agents' `-encrypt` key
 * @returns the system
 */
export function serfSystem(encryptKey: string): System {
  let seq = 0;
  return {
    label: "serf",
    async start(lab, host, how, waitUp) {
      const h = lab.hosts[host];
      const name = `h${host + 1}-${seq++}`;
      const args = ["netns", "exec", h.ns, ...(how.pin ? ["taskset", "-c", how.pin] : [])];
      args.push("serf", "agent", "-node", name, "-bind", `${h.addr}:${SERF_PORT}`);
      args.push("-rpc-addr", `${h.addr}:${SERF_RPC_PORT}`, "-encrypt", encryptKey);
      if (how.join) args.push("-join", how.join.addr);
      const ready = async () => {
        if (!waitUp) return true;
        (await SerfRpc.connect(h.addr, SERF_RPC_PORT)).close();
        return true;
      };
      const svc = await spawnDaemon({ cmd: "ip", args }, ready);
      lab.track(svc);
      return { host, name, svc, addr: `${h.addr}:${SERF_PORT}` };
    },
    async view(m, deadline = performance.now() + 10_000) {
      const host = m.addr.split(":")[0];
      let rpc: SerfRpc;
      for (;;) {
        try {
          rpc = await SerfRpc.connect(host, SERF_RPC_PORT);
          break;
        } catch (err) {
          if (performance.now() > deadline) throw err;
          await sleep(10);
        }
      }
      return {
        list: async () =>
          new Set((await rpc.members()).filter((x) => x.Status === "alive").map((x) => x.Name)),
        join: async (other) => {
          await rpc.join([other.addr]);
        },
        close: () => rpc.close(),
      };
    },
  };
}

/** The systems a run compares: circuit, and serf or why it is not there. */
export interface Systems {
  circuit: System;
  /** null when serf cannot run here. */
  serf: System | null;
  /** Why serf is not there, or null. */
  serfWhy: string | null;
}
