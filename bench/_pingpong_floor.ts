/**
 * The floor under the channel ping-pong of section 8: four Deno processes (two "servers",
 * parties P and Q) pass 64-byte messages over plain TCP (no MAC, no cipher, no msgpack, no
 * channel logic), in the order of messages one round of circuit's ping-pong needs.
 *
 * With 8 trips a round is what an exactly-once receive costs on each side: P's send to S1;
 * S1 offers the message to Q (whose receive waits); Q acknowledges it; S1 confirms it was
 * consumed; then the same from Q through S2 back to P. With 4 trips it is what a receive
 * that returns on arrival costs (Redis BRPOP's shape): send, delivery, send, delivery.
 *
 * Usage (`deno run -A bench/_pingpong_floor.ts …`):
 * - `s1 TRIPS` / `s2 TRIPS`: a server holding P's ping (s1) or Q's pong (s2) on a free
 *   port, which it prints; it serves one party P and one party Q, then relays;
 * - `q S1PORT S2PORT TRIPS`: party Q; prints `ready`;
 * - `p S1PORT S2PORT TRIPS N WARMUP`: party P; times N rounds after WARMUP untimed ones
 *   and prints the round trips in µs as a JSON array.
 *
 * @module
 */

const MSG = 64;
const SEND = 1, OFFER = 2, ACK = 3, CONSUMED = 4;
const HELLO_P = 9, HELLO_Q = 8;

/** Call `on` with the kind of each 64-byte message read from `conn`. */
function onMessages(conn: Deno.Conn, on: (kind: number) => void): void {
  void (async () => {
    const buf = new Uint8Array(64 * 1024);
    const held = new Uint8Array(128 * 1024);
    let have = 0;
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) return;
      held.set(buf.subarray(0, n), have);
      have += n;
      let at = 0;
      for (; have - at >= MSG; at += MSG) on(held[at]);
      held.copyWithin(0, at, have);
      have -= at;
    }
  })();
}

function put(conn: Deno.Conn, kind: number): void {
  const m = new Uint8Array(MSG);
  m[0] = kind;
  void conn.write(m).catch(() => {});
}

async function server(which: "s1" | "s2", trips: number): Promise<void> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log((l.addr as Deno.NetAddr).port);
  const conns = [await l.accept(), await l.accept()] as Deno.TcpConn[];
  const hello = async (c: Deno.TcpConn) => {
    c.setNoDelay(true);
    const b = new Uint8Array(1);
    await c.read(b);
    return b[0];
  };
  const ids = [await hello(conns[0]), await hello(conns[1])];
  const p = conns[ids.indexOf(HELLO_P)], q = conns[ids.indexOf(HELLO_Q)];
  // s1 holds P's ping (sender P, receiver Q), s2 Q's pong.
  const [from, to] = which === "s1" ? [p, q] : [q, p];
  onMessages(from, () => put(to, OFFER));
  if (trips === 8) onMessages(to, () => put(to, CONSUMED));
}

async function party(
  role: "p" | "q",
  s1Port: number,
  s2Port: number,
  trips: number,
  n = 0,
  warmup = 0,
): Promise<void> {
  const dial = async (port: number) => {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    c.setNoDelay(true);
    await c.write(new Uint8Array([role === "p" ? HELLO_P : HELLO_Q]));
    return c;
  };
  const [s1, s2] = [await dial(s1Port), await dial(s2Port)];
  // P sends on s1 and receives on s2; Q receives on s1 and sends on s2.
  const [out, inn] = role === "p" ? [s1, s2] : [s2, s1];
  const received = (kind: number): boolean => {
    if (trips === 8 && kind === OFFER) {
      put(inn, ACK);
      return false;
    }
    return true; // 8 trips: CONSUMED; 4 trips: the delivery itself
  };
  if (role === "q") {
    onMessages(inn, (kind) => received(kind) && put(out, SEND));
    console.log("ready");
    return;
  }
  const us: number[] = [];
  let t0 = 0;
  await new Promise<void>((done) => {
    onMessages(inn, (kind) => {
      if (!received(kind)) return;
      us.push((performance.now() - t0) * 1000);
      if (us.length === n + warmup) return done();
      t0 = performance.now();
      put(out, SEND);
    });
    t0 = performance.now();
    put(out, SEND);
  });
  console.log(JSON.stringify(us.slice(warmup)));
  Deno.exit(0);
}

if (import.meta.main) {
  const [role, ...rest] = Deno.args;
  const num = rest.map(Number);
  if (role === "s1" || role === "s2") await server(role, num[0]);
  else if (role === "q") await party("q", num[0], num[1], num[2]);
  else if (role === "p") await party("p", num[0], num[1], num[2], num[3], num[4]);
  else throw new Error(`unknown role ${role}`);
}
