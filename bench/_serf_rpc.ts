/**
 * A minimal client of serf's RPC protocol (msgpack over TCP, `serf agent -rpc-addr`):
 * `handshake`, `members`, `join` and `stream`, enough for the membership benchmark to ask
 * many agents what they see without spawning `serf members` for each question.
 *
 * @module
 */

import { Packr } from "msgpackr/pack";

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** One member as an agent reports it. */
export interface SerfMember {
  /** Node name. */
  Name: string;
  /** `alive`, `leaving`, `left` or `failed`. */
  Status: string;
}

interface Pending {
  body: boolean;
  resolve(v: { error: string; body: unknown }): void;
  reject(err: Error): void;
  header?: { Seq: number; Error: string };
}

/** One event of a `stream` subscription. */
export interface SerfEvent {
  /** `member-join`, `member-failed`, `member-leave`, … */
  Event: string;
  /** The members it is about. */
  Members?: SerfMember[];
}

/** One RPC connection to a serf agent. */
export class SerfRpc {
  #conn: Deno.TcpConn;
  #seq = 0;
  #pending = new Map<number, Pending>();
  #streams = new Map<number, (event: SerfEvent) => void>();
  #waitingBody: Pending | null = null;
  #closed = false;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    void this.#readLoop();
  }

  /**
   * Connect and shake hands.
   *
   * @param host the agent's RPC address
   * @param port its RPC port
   * @returns the client
   */
  static async connect(host: string, port: number): Promise<SerfRpc> {
    const conn = await Deno.connect({ hostname: host, port });
    conn.setNoDelay(true);
    const c = new SerfRpc(conn);
    try {
      await c.#call("handshake", { Version: 1 }, false);
    } catch (err) {
      c.close();
      throw err;
    }
    return c;
  }

  /**
   * The members this agent knows, every status.
   *
   * @returns the members
   */
  async members(): Promise<SerfMember[]> {
    const body = await this.#call("members", undefined, true) as { Members: SerfMember[] };
    return body.Members.map((m) => ({ Name: String(m.Name), Status: String(m.Status) }));
  }

  /**
   * Make the agent join other agents.
   *
   * @param addrs `HOST:PORT` of agents to join
   * @returns how many it reached
   */
  async join(addrs: string[]): Promise<number> {
    const body = await this.#call("join", { Existing: addrs, Replay: false }, true) as {
      Num: number;
    };
    return body.Num;
  }

  /**
   * Subscribe to events.
   *
   * @param types comma-separated event types, e.g. `member-failed,member-leave`
   * @param onEvent called for each event
   */
  async stream(types: string, onEvent: (e: SerfEvent) => void): Promise<void> {
    const seq = this.#seq;
    this.#streams.set(seq, onEvent);
    try {
      await this.#call("stream", { Type: types }, false);
    } catch (err) {
      this.#streams.delete(seq);
      throw err;
    }
  }

  /** Close the connection. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* closed */ }
    this.#fail(new Error("serf rpc closed"));
  }

  #fail(err: Error): void {
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
    this.#waitingBody?.reject(err);
    this.#waitingBody = null;
  }

  async #call(command: string, args: unknown, body: boolean): Promise<unknown> {
    if (this.#closed) throw new Error("serf rpc closed");
    const seq = this.#seq++;
    const r = await new Promise<{ error: string; body: unknown }>((resolve, reject) => {
      this.#pending.set(seq, { body, resolve, reject });
      const head = packr.pack({ Command: command, Seq: seq });
      const msg = args === undefined ? head : concat(head, packr.pack(args));
      writeAll(this.#conn, msg).catch((err) => {
        this.#pending.delete(seq);
        reject(err);
      });
    });
    if (r.error) throw new Error(`serf ${command}: ${r.error}`);
    return r.body;
  }

  async #readLoop(): Promise<void> {
    let buf: Uint8Array = new Uint8Array(0);
    const chunk = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.#conn.read(chunk);
        if (n === null) break;
        buf = concat(buf, chunk.subarray(0, n));
        let used = 0;
        try {
          packr.unpackMultiple(buf, (value: unknown, _start?: number, end?: number) => {
            this.#onValue(value);
            used = end ?? used;
          });
          used = buf.length;
        } catch (err) {
          const e = err as { incomplete?: boolean; lastPosition?: number };
          if (!e.incomplete) throw err;
          used = e.lastPosition ?? used;
        }
        buf = buf.slice(used);
      }
    } catch (err) {
      if (!this.#closed) this.#fail(err instanceof Error ? err : new Error(String(err)));
    }
    if (!this.#closed) this.#fail(new Error("serf rpc connection ended"));
  }

  #onValue(value: unknown): void {
    if (this.#waitingBody) {
      const p = this.#waitingBody;
      this.#waitingBody = null;
      p.resolve({ error: p.header!.Error, body: value });
      return;
    }
    const h = value as { Seq: number; Error: string };
    const p = this.#pending.get(h.Seq);
    if (!p) {
      const onEvent = this.#streams.get(h.Seq);
      if (onEvent) {
        // An event: its record follows the header.
        this.#waitingBody = {
          body: true,
          header: { Seq: h.Seq, Error: "" },
          resolve: ({ body }) => {
            const e = body as SerfEvent;
            onEvent({
              Event: String(e.Event),
              Members: e.Members?.map((m) => ({ Name: String(m.Name), Status: String(m.Status) })),
            });
          },
          reject: () => {},
        };
      }
      return;
    }
    this.#pending.delete(h.Seq);
    if (p.body) {
      p.header = { Seq: h.Seq, Error: String(h.Error ?? "") };
      this.#waitingBody = p;
    } else p.resolve({ error: String(h.Error ?? ""), body: undefined });
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}
