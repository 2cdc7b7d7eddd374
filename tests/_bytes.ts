/**
 * Byte helpers the tests share: joining buffers, a big-endian `u32`, a plain
 * length-prefixed frame (`length (u32) | body`, as every handshake frame travels, see
 * docs/wire.md) and writing a whole buffer to a socket.
 *
 * @module
 */

/**
 * The parts joined into one new buffer.
 *
 * @param parts the buffers, in order
 * @returns their bytes, one after the other
 */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * `n` as four big-endian bytes, as a frame's length prefix.
 *
 * @param n an unsigned 32-bit integer
 * @returns the four bytes
 */
export function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/**
 * A plain frame: `length (u32) | body`.
 *
 * @param body the frame's body
 * @returns the length prefix and the body
 */
export function frame(body: Uint8Array): Uint8Array {
  return concat(u32(body.length), body);
}

/**
 * Write every byte of `bytes` to `conn` (one `write` may take only some).
 *
 * @param conn the socket
 * @param bytes what to send
 */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}
