/**
 * Binding a server's ports: the TCP listener and the membership's UDP socket, on the same
 * port number.
 *
 * @module
 */

import { CircuitError } from "../net/errors.ts";
import { type AdmitFn, UdpTransport } from "../net/membership/mod.ts";
import { PORT_ATTEMPTS } from "./config.ts";
import { UdpOwners } from "./local_peer.ts";

/** The bound ports. */
export interface BoundPorts {
  /** The TCP listener. */
  listener: Deno.Listener;
  /** The membership's UDP socket, on the listener's port number. */
  udp: UdpTransport;
  /** The port both are bound on. */
  port: number;
}

/** Options of {@linkcode bindPorts}. */
export interface BindOptions {
  /** The address to bind. */
  hostname: string;
  /** The port; 0 picks one free for both TCP and UDP. */
  port: number;
  /**
   * Whether the cluster has a key. Keyless, loopback does not separate users, so
   * membership packets from loopback are read only when they come from a socket of our
   * own user (or root).
   */
  keyed: boolean;
}

/**
 * Bind the TCP listener and the membership's UDP socket on the same port number. With
 * port 0 the kernel picks the TCP port; if that UDP port is taken, try another, up to
 * {@linkcode PORT_ATTEMPTS} times.
 *
 * @param options address, port, whether keyed
 * @returns the bound ports
 * @throws {CircuitError} `bad request` when either cannot be bound
 */
export async function bindPorts(options: BindOptions): Promise<BoundPorts> {
  const { hostname, port } = options;
  const owners = options.keyed ? null : new UdpOwners();
  const admit: AdmitFn | undefined = owners ? (from) => owners.admit(from) : undefined;
  for (let attempt = 1;; attempt++) {
    let listener: Deno.Listener;
    try {
      listener = Deno.listen({ hostname, port });
    } catch (err) {
      const why = err instanceof Deno.errors.AddrInUse
        ? "address already in use"
        : (err as Error).message;
      throw new CircuitError("bad request", `Binding ${hostname}:${port} failed: ${why}`, {
        cause: err,
      });
    }
    const bound = (listener.addr as Deno.NetAddr).port;
    try {
      const udp = await UdpTransport.bind({ host: hostname, port: bound }, { admit });
      return { listener, udp, port: bound };
    } catch (err) {
      listener.close();
      if (port === 0 && attempt < PORT_ATTEMPTS) continue;
      throw new CircuitError(
        "bad request",
        `Binding UDP ${hostname}:${bound} for membership failed: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
}
