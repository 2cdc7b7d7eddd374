/**
 * A minimal RESP2 client for the Redis peer: one request at a time per connection,
 * bulk-string arguments, replies parsed into strings, numbers, byte arrays, arrays or
 * null. Enough for PING, LPUSH, BRPOP and DEL; not a general Redis client.
 *
 * @module
 */

/** A parsed reply. */
export type RespValue = string | number | Uint8Array | null | RespValue[];

const enc = new TextEncoder();
const dec = new TextDecoder();
const CRLF = enc.encode("\r\n");

/** One connection to a Redis server. */
export class Resp {
  #conn: Deno.TcpConn;
  #buf = new Uint8Array(0);
  #off = 0;
  #chunk = new Uint8Array(64 * 1024);

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    conn.setNoDelay(true);
  }

  /**
   * Connect.
   *
   * @param port the server's loopback port
   * @returns the client
   */
  static async connect(port: number): Promise<Resp> {
    return new Resp(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /**
   * Send one command and read its reply.
   *
   * @param args the command and its arguments (text or bytes)
   * @returns the reply
   * @throws {Error} on an error reply
   */
  async call(...args: (string | Uint8Array)[]): Promise<RespValue> {
    await this.send(args);
    return await this.reply();
  }

  /**
   * Write one command without reading its reply (for pipelining).
   *
   * @param args the command and its arguments
   */
  async send(args: (string | Uint8Array)[]): Promise<void> {
    const parts: Uint8Array[] = [enc.encode(`*${args.length}\r\n`)];
    for (const a of args) {
      const b = typeof a === "string" ? enc.encode(a) : a;
      parts.push(enc.encode(`$${b.length}\r\n`), b, CRLF);
    }
    let n = 0;
    for (const p of parts) n += p.length;
    const out = new Uint8Array(n);
    n = 0;
    for (const p of parts) {
      out.set(p, n);
      n += p.length;
    }
    let off = 0;
    while (off < out.length) off += await this.#conn.write(out.subarray(off));
  }

  /**
   * Read one reply.
   *
   * @returns the reply
   * @throws {Error} on an error reply or a closed connection
   */
  async reply(): Promise<RespValue> {
    const line = await this.#line();
    const type = line[0], rest = line.slice(1);
    switch (type) {
      case "+":
        return rest;
      case "-":
        throw new Error(`redis: ${rest}`);
      case ":":
        return Number(rest);
      case "$": {
        const len = Number(rest);
        if (len < 0) return null;
        const body = await this.#bytes(len + 2);
        return body.slice(0, len);
      }
      case "*": {
        const len = Number(rest);
        if (len < 0) return null;
        const items: RespValue[] = [];
        for (let i = 0; i < len; i++) items.push(await this.reply());
        return items;
      }
      default:
        throw new Error(`redis: unexpected reply "${line}"`);
    }
  }

  /** Close the connection. */
  close(): void {
    try {
      this.#conn.close();
    } catch { /* closed */ }
  }

  async #fill(): Promise<void> {
    const n = await this.#conn.read(this.#chunk);
    if (n === null) throw new Error("redis: connection closed");
    const left = this.#buf.subarray(this.#off);
    const next = new Uint8Array(left.length + n);
    next.set(left);
    next.set(this.#chunk.subarray(0, n), left.length);
    this.#buf = next;
    this.#off = 0;
  }

  async #line(): Promise<string> {
    for (;;) {
      const at = this.#buf.indexOf(0x0d, this.#off);
      if (at >= 0 && at + 1 < this.#buf.length) {
        const s = dec.decode(this.#buf.subarray(this.#off, at));
        this.#off = at + 2;
        return s;
      }
      await this.#fill();
    }
  }

  async #bytes(n: number): Promise<Uint8Array> {
    while (this.#buf.length - this.#off < n) await this.#fill();
    const out = this.#buf.subarray(this.#off, this.#off + n);
    this.#off += n;
    return out;
  }
}
