/**
 * Send datagrams, for tests that replay captured packets from inside a namespace:
 * `deno run -A tests/_udp_send.ts HOST PORT HEX...` sends each hex string as one datagram
 * to HOST:PORT, a few milliseconds apart, then exits.
 *
 * @module
 */

import dgram from "node:dgram";

const [host, port, ...packets] = Deno.args;
const socket = dgram.createSocket("udp4");
for (const hex of packets) {
  const bytes = new Uint8Array(hex.match(/../g)!.map((b) => Number.parseInt(b, 16)));
  await new Promise<void>((resolve, reject) =>
    socket.send(bytes, Number(port), host, (err) => (err ? reject(err) : resolve()))
  );
  await new Promise((r) => setTimeout(r, 5));
}
socket.close();
