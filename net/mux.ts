/**
 * Multiplexed calls and byte streams over one framed connection.
 *
 * A call is a request with one reply. It may carry an upload byte stream (caller →
 * callee) and a download byte stream (callee → caller); each stream has credit-based
 * flow control: a sender has {@linkcode INITIAL_WINDOW_BYTES} of credit and gets more
 * only as the receiver's reader pulls, so a slow reader stalls only its own stream and
 * nothing buffers more than one window. Call ids are odd for the dialer and even for
 * the acceptor, so both sides can call.
 *
 * Messages are msgpack arrays `[tag, id, …]`; every message queued while a write is in
 * flight goes into the next frame, so the per-frame MAC is paid once for many.
 *
 * @module
 */

import { Packr } from "msgpackr/pack";
import { abortError, CircuitError, fromWireError, toWireError, typeName } from "./errors.ts";
import type { TransportConfig } from "./config.ts";

/** Credit every byte stream starts with, in bytes (a protocol constant). */
export const INITIAL_WINDOW_BYTES = 1024 * 1024;

/** Message tags. Append-only. */
export const Tag = {
  REQ: 1,
  RES: 2,
  CANCEL: 3,
  DATA: 4,
  CREDIT: 5,
  END: 6,
  RESET: 7,
  PING: 8,
  PONG: 9,
  GOAWAY: 10,
} as const;

const UP = 0;
const DOWN = 1;
const FLAG_UPLOAD = 1;
const FLAG_DOWNLOAD = 2;

/** A call as the callee sees it. */
export interface IncomingCall {
  /** Operation name. */
  op: string;
  /** Request body. */
  body: unknown;
  /** Aborted when the caller cancels or the connection drops. */
  signal: AbortSignal;
  /** Bytes from the caller, when the call has an upload. */
  upload: ReadableStream<Uint8Array> | null;
  /** Bytes to the caller, when the call has a download; the handler must close it. */
  download: WritableStream<Uint8Array> | null;
  /**
   * The whole upload, when all of it has arrived and nobody has read `upload`: its chunks
   * (the upload is then over); else null. A small message sent with its request needs
   * no stream this way.
   */
  takeUpload?(): Uint8Array[] | null;
  /**
   * Send `bytes` as the whole download, then its end, without making the `download`
   * stream; false, and nothing sent, when that stream is in use or the bytes do not fit
   * one chunk within the credit.
   */
  sendDownload?(bytes: Uint8Array): boolean;
  /**
   * For an upload that is only a signal (an acknowledgement): resolves true once it ends
   * having carried no bytes, false if it breaks or carries some. Reads nothing through
   * `upload`.
   */
  uploadEnded?(): Promise<boolean>;
}

/** Serves incoming calls; what it returns is the reply, what it throws the error. */
export type Handler = (call: IncomingCall) => Promise<unknown>;

/** Options of an outgoing call. */
export interface CallOptions {
  /** Cancels the call: the callee's signal aborts and the streams reset. */
  signal?: AbortSignal;
  /** Cancels the call with a `timeout` error after this many ms; 0 or absent: never. */
  timeoutMs?: number;
  /**
   * Open an upload stream. Bytes instead of `true` are the whole upload: they go out with
   * the request and the call has no upload writer (cheaper than a stream for a small
   * message; flow control still applies to a large one).
   */
  upload?: boolean | Uint8Array;
  /** Open a download stream. */
  download?: boolean;
  /**
   * What the call is, for the messages of its timeout and abort errors, e.g.
   * `Recv /X1/chan` (default: `Call "OP"`).
   */
  label?: string;
}

/** An outgoing call. */
export interface OutgoingCall {
  /** The reply. */
  result: Promise<unknown>;
  /** Bytes to the callee (when asked for); close it to end the upload. */
  upload: WritableStream<Uint8Array> | null;
  /** Bytes from the callee (when asked for). */
  download: ReadableStream<Uint8Array> | null;
  /**
   * The whole download once it has ended, without making the `download` stream: its
   * chunks, or the error that broke it. Null when there is no download or its stream is
   * in use. A small reply-like message needs no stream this way.
   */
  downloadWhole?(): Promise<Uint8Array[]> | null;
  /**
   * End the upload now with no bytes (an acknowledgement), without making the `upload`
   * stream; false when there is no upload or its stream is in use.
   */
  endUpload?(): boolean;
  /** Give up the upload: the callee's reader fails. Works whether or not its stream exists. */
  resetUpload?(): void;
  /**
   * From now on neither the signal nor the time limit cancels the call: it settles only
   * with the reply or with the connection. For a commitment already sent (a receiver's
   * acknowledgement), whose outcome the caller must learn rather than abandon.
   */
  holdToEnd?(): void;
}

/** Counters for `stk` and benchmarks. */
export interface MuxStats {
  /** Calls this side started that have not finished. */
  callsOut: number;
  /** Calls this side serves that have not finished. */
  callsIn: number;
  /** Frames written. */
  framesOut: number;
  /** Frames read. */
  framesIn: number;
  /** Messages written. */
  messagesOut: number;
  /** Last measured ping round trip in milliseconds, or -1. */
  rttMs: number;
  /** Bytes queued for writing. */
  queuedBytes: number;
}

/** What the mux needs from the connection under it. */
export interface MuxOptions {
  /** 1 for the dialer (odd ids), 2 for the acceptor (even ids). */
  parity: 1 | 2;
  /** Serves the peer's calls; absent means every call is refused. */
  handler?: Handler;
  /** Limits and timings. */
  config: TransportConfig;
  /**
   * Writes one frame whose body is `parts` one after another, `size` bytes in all (sealed
   * by the connection, which joins them: the mux never copies a batch into one body). The
   * parts must be consumed (sealed into the frame's own memory) before it returns: the mux
   * then lets their owners reuse them.
   */
  writeFrame(parts: Uint8Array[], size: number): Promise<void>;
  /** Called once, when the mux closes, with the reason. */
  onClose(reason: CircuitError): void;
  /** Names the peer in error messages. */
  peerName: string;
  /** One-line event log (protocol violations). */
  log?: (message: string) => void;
}

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

const NO_BYTES = new Uint8Array(0);

/**
 * DATA bytes from this size on go into the frame as they are, after a header encoded
 * apart, rather than being copied into a packed message first (the same bytes on the
 * wire).
 */
const DIRECT_DATA_BYTES = 4096;

/** A DATA message queued with its bytes uncopied. */
interface DirectData {
  /** The message's msgpack bytes up to the bin payload. */
  head: Uint8Array;
  /** The payload, not copied: its owner waits for `sealed` before reusing it. */
  body: Uint8Array;
  /** Called once the body has been sealed into a frame (or dropped at close). */
  sealed: () => void;
}

/** An outbox entry: a packed message, or a DATA message in two parts. */
type Outgoing = Uint8Array | DirectData;

function outgoingBytes(e: Outgoing): number {
  return e instanceof Uint8Array ? e.length : e.head.length + e.body.length;
}

/** The msgpack encoding of `[Tag.DATA, id, <bin of n bytes>]` up to the payload. */
function dataHead(id: number, n: number): Uint8Array {
  // Let msgpack encode the tag and id, with an empty bin (0xc4 0x00) in place of the
  // payload; then swap that for the real bin header.
  const empty = packr.pack([Tag.DATA, id, NO_BYTES]);
  const prefix = empty.length - 2;
  const head = new Uint8Array(prefix + (n < 256 ? 2 : n < 65536 ? 3 : 5));
  head.set(empty.subarray(0, prefix));
  const v = new DataView(head.buffer, head.byteOffset + prefix);
  if (n < 256) {
    v.setUint8(0, 0xc4);
    v.setUint8(1, n);
  } else if (n < 65536) {
    v.setUint8(0, 0xc5);
    v.setUint16(1, n);
  } else {
    v.setUint8(0, 0xc6);
    v.setUint32(1, n);
  }
  return head;
}

/** The stream halves behind each call a mux hands to its handler, for `forward`. */
const SIDES = new WeakMap<IncomingCall, { up: RecvSide | null; down: SendSide | null }>();

/** Most promise turns the writer waits for more messages before cutting a frame. */
const SETTLE_TURNS = 32;
/** Turns without a new message after which the writer stops waiting. */
const SETTLE_QUIET_TURNS = 6;

/**
 * One keep-alive timer per process per interval, however many connections: idle
 * servers wake once per interval instead of once per connection.
 */
const tickers = new Map<number, { timer: number; ticks: Map<Mux, () => void> }>();

function startTicking(mux: Mux, intervalMs: number, tick: () => void): () => void {
  let t = tickers.get(intervalMs);
  if (!t) {
    const ticks = new Map<Mux, () => void>();
    const timer = setInterval(() => {
      for (const f of ticks.values()) f();
    }, intervalMs) as unknown as number;
    Deno.unrefTimer(timer);
    tickers.set(intervalMs, t = { timer, ticks });
  }
  const ticker = t;
  ticker.ticks.set(mux, tick);
  return () => {
    ticker.ticks.delete(mux);
    if (ticker.ticks.size === 0 && tickers.get(intervalMs) === ticker) {
      clearInterval(ticker.timer);
      tickers.delete(intervalMs);
    }
  };
}

/** The sending half of a byte stream. */
class SendSide {
  credit = INITIAL_WINDOW_BYTES;
  done = false;
  #wake: (() => void) | null = null;
  #error: CircuitError | null = null;
  #writable: WritableStream<Uint8Array> | null = null;

  #mux: Mux;
  #id: number;
  #dir: number;
  #chunkBytes: number;
  #onDone: () => void;
  /** Relay mode: chunks from the previous hop waiting for credit, and whether END follows. */
  #relayed: Uint8Array[] = [];
  #relayEnd = false;
  /** Relay mode: the previous hop, told of bytes sent on (its credit) and of failure. */
  #upstream: RecvSide | null = null;
  /** Made when someone waits for the stream to be over. */
  #finished: PromiseWithResolvers<void> | undefined;

  constructor(mux: Mux, id: number, dir: number, chunkBytes: number, onDone: () => void) {
    this.#mux = mux;
    this.#id = id;
    this.#dir = dir;
    this.#chunkBytes = chunkBytes;
    this.#onDone = onDone;
  }

  /** The stream's writer side, made on first use (a whole upload never needs one). */
  get writable(): WritableStream<Uint8Array> {
    return this.#writable ??= this.#makeWritable();
  }

  #makeWritable(): WritableStream<Uint8Array> {
    const mux = this.#mux, id = this.#id, dir = this.#dir, chunkBytes = this.#chunkBytes;
    return new WritableStream<Uint8Array>({
      write: async (chunk) => {
        if (!(chunk instanceof Uint8Array)) {
          // Reset the stream for both ends, so the callee is not left waiting for the rest
          // of an upload that will never come.
          const err = new CircuitError(
            "bad request",
            `A byte stream takes Uint8Array chunks, not ${typeName(chunk)}`,
          );
          this.reset(err);
          throw err;
        }
        let off = 0;
        let unsealed: Promise<void> | null = null;
        while (off < chunk.length) {
          while (this.credit <= 0 && !this.#error) {
            await new Promise<void>((r) => (this.#wake = r));
          }
          if (this.#error) throw this.#error;
          const n = Math.min(this.credit, chunkBytes, chunk.length - off);
          const sealed = mux.sendData(id, chunk.subarray(off, off + n));
          if (sealed !== true) unsealed = sealed;
          this.credit -= n;
          off += n;
        }
        // The chunk is the writer's again once its last uncopied piece is sealed into a
        // frame (the outbox is sealed in order, so the earlier ones are too).
        if (unsealed) await unsealed;
      },
      close: () => {
        if (this.#error) throw this.#error;
        mux.send([Tag.END, id]);
        this.#finish();
      },
      abort: () => {
        if (!this.#error) mux.send([Tag.RESET, id, dir]);
        this.fail(new CircuitError("aborted", "Stream was aborted by the writer"));
        this.#finish();
      },
    });
  }

  /**
   * Send `bytes` and the END at once, with no writable: a whole upload, a whole download
   * ({@linkcode IncomingCall.sendDownload}) or an empty acknowledgement. False, and nothing
   * sent, when the writable is in use or the bytes do not fit one chunk within the credit.
   */
  sendWhole(bytes: Uint8Array): boolean {
    if (this.#writable || this.done || this.#error) return false;
    if (bytes.length > this.credit || bytes.length > this.#chunkBytes) return false;
    if (bytes.length > 0) this.#mux.send([Tag.DATA, this.#id, bytes]);
    this.#mux.send([Tag.END, this.#id]);
    this.credit -= bytes.length;
    this.#finish();
    return true;
  }

  grant(n: number): void {
    this.credit += n;
    this.#wake?.();
    this.#wake = null;
    if (this.#upstream) this.#flushRelayed();
  }

  /**
   * Relay mode: take the bytes `from` receives from the previous hop and send them on,
   * message by message, with no stream in between. `from` grants its sender credit only
   * as bytes leave here, so what waits here never exceeds `from`'s window.
   *
   * @param from the receiving half of the previous hop
   */
  relayFrom(from: RecvSide): void {
    this.#upstream = from;
    from.relayTo(this);
  }

  /** Relay mode: a chunk from the previous hop. */
  relayData(chunk: Uint8Array): void {
    if (this.#error || this.done) return;
    this.#relayed.push(chunk);
    this.#flushRelayed();
  }

  /** Relay mode: the previous hop ended its stream; END follows the bytes still waiting. */
  relayEnd(): void {
    this.#relayEnd = true;
    this.#flushRelayed();
  }

  #flushRelayed(): void {
    while (this.#relayed.length > 0 && this.credit > 0 && !this.#error) {
      const c = this.#relayed[0];
      const n = Math.min(this.credit, this.#chunkBytes, c.length);
      // Relayed bytes are views of frames read off the other connection, never reused:
      // no need to wait for them to be sealed.
      void this.#mux.sendData(this.#id, n === c.length ? c : c.subarray(0, n));
      this.credit -= n;
      if (n === c.length) this.#relayed.shift();
      else this.#relayed[0] = c.subarray(n);
      this.#upstream?.consumed(n);
    }
    if (this.#relayEnd && this.#relayed.length === 0 && !this.#error && !this.done) {
      this.#mux.send([Tag.END, this.#id]);
      this.#finish();
    }
  }

  /** The receiver went away or the call ended: further writes fail. */
  fail(err: CircuitError): void {
    if (this.#error) return;
    this.#error = err;
    this.#relayed = [];
    this.#wake?.();
    this.#wake = null;
    this.#finish();
    // Relay mode: the previous hop's sender stops too.
    this.#upstream?.reset(err);
  }

  /** Tell the receiver this stream is over without an END, then fail locally. */
  reset(err: CircuitError): void {
    if (this.done) return;
    this.#mux.send([Tag.RESET, this.#id, this.#dir]);
    this.fail(err);
  }

  #finish(): void {
    if (this.done) return;
    this.done = true;
    this.#onDone();
    this.#finished?.resolve();
  }

  /** Resolves once the stream is over: ended, failed or reset. */
  get finished(): Promise<void> {
    if (this.done) return Promise.resolve();
    return (this.#finished ??= Promise.withResolvers<void>()).promise;
  }
}

/** The receiving half of a byte stream. */
class RecvSide {
  window = INITIAL_WINDOW_BYTES;
  done = false;
  #queue: Uint8Array[] = [];
  #ended = false;
  #grant = 0;
  #error: CircuitError | null = null;
  /** Set once the readable exists (it is made on first use). */
  #ctrl: ReadableStreamDefaultController<Uint8Array> | undefined;
  #readable: ReadableStream<Uint8Array> | undefined;
  #waiting = false;
  /** Relay mode: where the bytes go instead of the readable. */
  #sink: SendSide | null = null;
  /** Whether any bytes arrived, and who waits for the end of a signal-only stream. */
  #sawData = false;
  #over: PromiseWithResolvers<boolean> | undefined;
  /** Whole mode: who waits for all the bytes. */
  #whole: PromiseWithResolvers<Uint8Array[]> | undefined;

  constructor(
    private mux: Mux,
    private id: number,
    private dir: number,
    private onDone: () => void,
  ) {}

  /**
   * The bytes as a stream, made on first use: a call whose upload is taken whole, only
   * awaited as an acknowledgement, or relayed never needs one. Bytes that arrived before
   * are read first; a stream already over reads as closed, or as its error.
   */
  get readable(): ReadableStream<Uint8Array> {
    if (this.#readable) return this.#readable;
    const rs = new ReadableStream<Uint8Array>({
      start: (c) => {
        this.#ctrl = c;
      },
      pull: () => {
        if (!this.#deliver()) this.#waiting = true;
      },
      cancel: () => {
        if (this.done) return;
        this.mux.send([Tag.RESET, this.id, this.dir]);
        this.#finish();
      },
    }, { highWaterMark: 0 });
    if (this.done) {
      if (this.#error) this.#ctrl!.error(this.#error);
      else this.#ctrl!.close();
    }
    return this.#readable = rs;
  }

  /** DATA arrived; false means the sender overran its credit. */
  data(chunk: Uint8Array): boolean {
    if (this.done || this.#error) return true;
    this.window -= chunk.length;
    if (this.window < 0) return false;
    this.#sawData = true;
    if (this.#sink) this.#sink.relayData(chunk);
    else if (this.#whole) {
      this.#queue.push(chunk);
      this.consumed(chunk.length); // taken as it comes
    } else {
      this.#queue.push(chunk);
      if (this.#waiting) this.#deliver();
    }
    return true;
  }

  end(): void {
    if (this.done) return;
    this.#ended = true;
    if (this.#whole) {
      this.#whole.resolve(this.#queue.splice(0));
      this.#finish();
    } else if (this.#sink) {
      this.#sink.relayEnd();
      this.#finish();
    } else if (this.#waiting || this.#queue.length === 0) this.#deliver();
  }

  /** The stream broke: bytes already received are still delivered, then `err`. */
  fail(err: CircuitError): void {
    if (this.done || this.#error) return;
    this.#error = err;
    if (this.#whole) {
      this.#whole.reject(err); // a broken message is no message
      this.#finish();
    } else if (this.#sink) {
      this.#finish();
      this.#sink.reset(err); // the next hop's receiver learns the stream broke
    } else if (this.#queue.length === 0) this.#deliver();
  }

  /**
   * Relay mode (see {@linkcode SendSide.relayFrom}): bytes go to `sink` from now on,
   * those already queued first; the readable is never used.
   */
  relayTo(sink: SendSide): void {
    this.#sink = sink;
    for (const c of this.#queue.splice(0)) sink.relayData(c);
    if (this.#error) {
      this.#finish();
      sink.reset(this.#error);
    } else if (this.#ended) {
      sink.relayEnd();
      this.#finish();
    }
  }

  /** See {@linkcode IncomingCall.takeUpload}. */
  takeWhole(): Uint8Array[] | null {
    if (!this.#ended || this.#error || this.#sink || this.#readable?.locked) return null;
    const chunks = this.#queue.splice(0);
    if (!this.done) {
      this.#ctrl?.close(); // a late reader finds it over, not waiting
      this.#finish();
    }
    return chunks;
  }

  /** See {@linkcode OutgoingCall.downloadWhole}. */
  whole(): Promise<Uint8Array[]> | null {
    if (this.#readable || this.#sink) return null;
    if (this.#whole) return this.#whole.promise;
    if (this.#error) return Promise.reject(this.#error);
    if (this.done) return Promise.resolve(this.#queue.splice(0)); // ended, nothing queued
    if (this.#ended) {
      const chunks = this.#queue.splice(0);
      this.#finish();
      return Promise.resolve(chunks);
    }
    this.#whole = Promise.withResolvers<Uint8Array[]>();
    let queued = 0;
    for (const c of this.#queue) queued += c.length;
    if (queued > 0) this.consumed(queued);
    return this.#whole.promise;
  }

  /** See {@linkcode IncomingCall.uploadEnded}. */
  emptyEnd(): Promise<boolean> {
    if (this.#sawData || this.#error) return Promise.resolve(false);
    if (this.done) return Promise.resolve(this.#ended);
    return (this.#over ??= Promise.withResolvers<boolean>()).promise;
  }

  /**
   * `n` bytes are gone from here (read, collected, or sent on by a relay): return them to
   * our sender as credit once half a window has gathered.
   */
  consumed(n: number): void {
    this.#grant += n;
    if (this.#grant >= INITIAL_WINDOW_BYTES / 2 && !this.#ended && !this.#error && !this.done) {
      this.mux.send([Tag.CREDIT, this.id, this.#grant]);
      this.window += this.#grant;
      this.#grant = 0;
    }
  }

  /** Tell the sender to stop, then fail locally. */
  reset(err: CircuitError): void {
    if (this.done) return;
    this.mux.send([Tag.RESET, this.id, this.dir]);
    this.#queue = [];
    this.fail(err);
    if (!this.done) {
      // It had failed earlier with bytes still unread: nobody will read them now.
      this.#ctrl?.error(err);
      this.#finish();
    }
  }

  #deliver(): boolean {
    if (!this.#ctrl) {
      // No readable yet: once nothing is left to hand over, the stream is simply over.
      if (this.#queue.length === 0 && (this.#ended || this.#error)) {
        this.#finish();
        return true;
      }
      return false;
    }
    const chunk = this.#queue.shift();
    if (chunk) {
      this.#waiting = false;
      this.#ctrl.enqueue(chunk);
      this.consumed(chunk.length);
      return true;
    }
    if (this.#error) {
      this.#ctrl.error(this.#error);
      this.#finish();
      return true;
    }
    if (this.#ended) {
      this.#ctrl.close();
      this.#finish();
      return true;
    }
    return false;
  }

  #finish(): void {
    this.done = true;
    this.#queue = [];
    this.onDone();
    this.#over?.resolve(this.#ended && !this.#error && !this.#sawData);
  }
}

interface OutState {
  resolve(v: unknown): void;
  reject(e: CircuitError): void;
  settled: boolean;
  up: SendSide | null;
  down: RecvSide | null;
  unlisten(): void;
  /** When the call times out (`performance.now()` ms); Infinity for never. */
  deadline: number;
  /** The timeout's error. */
  timeout?: () => CircuitError;
  /** What the call is, when the caller said ({@linkcode CallOptions.label}). */
  label?: string;
}

interface InState {
  abort: AbortController;
  up: RecvSide | null;
  down: SendSide | null;
  replied: boolean;
}

/** One side of a multiplexed connection. */
export class Mux {
  #o: MuxOptions;
  #nextId: number;
  #out = new Map<number, OutState>();
  #in = new Map<number, InState>();
  #outbox: Outgoing[] = [];
  #queued = 0;
  #pumping = false;
  #closed: CircuitError | null = null;
  #lastRecv = Date.now();
  #stopTicking: () => void;
  #pingSentAt = 0;
  /** One timer for every call's time limit, armed for the earliest (Infinity: none). */
  #deadlineAt = Infinity;
  #deadlineTimer: number | undefined;
  #stats = { framesOut: 0, framesIn: 0, messagesOut: 0, rttMs: -1 };

  /** @param options the connection's hooks and config */
  constructor(options: MuxOptions) {
    this.#o = options;
    this.#nextId = options.parity;
    this.#stopTicking = startTicking(this, options.config.pingIntervalMs, () => this.#tick());
  }

  /** Whether the mux has closed. */
  get isClosed(): boolean {
    return this.#closed !== null;
  }

  /** Counters. */
  get stats(): MuxStats {
    return {
      ...this.#stats,
      callsOut: this.#out.size,
      callsIn: this.#in.size,
      queuedBytes: this.#queued,
    };
  }

  /**
   * Start a call.
   *
   * @param op operation name
   * @param body request body (msgpack-encodable)
   * @param options signal and streams
   * @returns the reply promise and the streams asked for
   */
  call(op: string, body: unknown, options: CallOptions = {}): OutgoingCall {
    const { result, st } = this.#start(op, body, options);
    if (!st) return { result, upload: null, download: null };
    const whole = options.upload instanceof Uint8Array ? options.upload : null;
    // A whole upload that fits one chunk within the credit is one DATA and the END; a
    // larger one goes through the stream, with flow control. Either way the caller gets
    // no upload writer.
    if (whole && st.up && !st.up.sendWhole(whole)) {
      const w = st.up.writable.getWriter();
      w.write(whole).catch(() => {});
      w.close().catch(() => {});
    }
    const up = whole ? null : st.up, down = st.down;
    return {
      result,
      // Both made on first use: downloadWhole and endUpload need neither.
      get upload() {
        return up?.writable ?? null;
      },
      get download() {
        return down?.readable ?? null;
      },
      downloadWhole: () => down?.whole() ?? null,
      endUpload: () => up?.sendWhole(NO_BYTES) ?? false,
      resetUpload: () => up?.reset(new CircuitError("aborted", "The caller gave up its upload")),
      holdToEnd: () => {
        st.unlisten();
        st.deadline = Infinity; // the shared deadline timer skips it from now on
      },
    };
  }

  /**
   * Forward a call a mux handed to its handler (this one's or another's) to this mux's
   * peer, relaying its streams message by message: no stream objects and no pipes between
   * the two connections, and each side's flow control reaches through to the other.
   * Cancelling the incoming call cancels the forwarded one; a stream that breaks on one
   * side is reset on the other.
   *
   * @param call the incoming call
   * @param body the request body to send on
   * @returns the peer's reply, once the streams are relayed too
   * @throws {CircuitError} what the peer threw, or why the call failed
   */
  async forward(call: IncomingCall, body: unknown): Promise<unknown> {
    const src = SIDES.get(call);
    if (!src) throw new CircuitError("bad request", "Only a call a mux received can be forwarded");
    const { result, st } = this.#start(call.op, body, {
      signal: call.signal,
      upload: src.up !== null,
      download: src.down !== null,
    });
    const relays: Promise<void>[] = [];
    if (st?.up && src.up) {
      st.up.relayFrom(src.up);
      relays.push(st.up.finished);
    }
    if (st?.down && src.down) {
      src.down.relayFrom(st.down);
      relays.push(src.down.finished);
    }
    if (!st) {
      const err = new CircuitError("closed", "The call could not be forwarded");
      src.up?.reset(err);
      src.down?.reset(err);
    }
    try {
      return await result;
    } finally {
      await Promise.all(relays);
    }
  }

  /** Register a call and send its request; `st` is null when it failed at once. */
  #start(
    op: string,
    body: unknown,
    options: CallOptions,
  ): { id: number; result: Promise<unknown>; st: OutState | null } {
    const id = this.#nextId;
    this.#nextId += 2;
    const { signal } = options;
    const label = options.label ?? `Call "${op}"`;
    let resolve!: (v: unknown) => void, reject!: (e: CircuitError) => void;
    const result = new Promise<unknown>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    result.catch(() => {}); // callers that only use streams must not see unhandled rejections
    if (this.#closed) {
      reject(this.#closed);
      return { id, result, st: null };
    }
    if (signal?.aborted) {
      reject(abortError(signal, label));
      return { id, result, st: null };
    }
    const st: OutState = {
      resolve,
      reject,
      settled: false,
      up: null,
      down: null,
      unlisten: () => {},
      deadline: Infinity,
      label: options.label,
    };
    const gc = () => this.#gcOut(id, st);
    if (options.upload) {
      st.up = new SendSide(this, id, UP, this.#o.config.maxChunkBytes, gc);
    }
    if (options.download) st.down = new RecvSide(this, id, DOWN, gc);
    if (signal) {
      const onAbort = () => this.#cancelOut(id, st, abortError(signal, label));
      signal.addEventListener("abort", onAbort, { once: true });
      st.unlisten = () => signal.removeEventListener("abort", onAbort);
    }
    const ms = options.timeoutMs ?? 0;
    if (ms > 0) {
      st.deadline = performance.now() + ms;
      st.timeout = () => new CircuitError("timeout", `${label} timed out after ${ms} ms`);
      if (st.deadline < this.#deadlineAt) this.#armDeadline(st.deadline);
    }
    this.#out.set(id, st);
    const flags = (options.upload ? FLAG_UPLOAD : 0) | (options.download ? FLAG_DOWNLOAD : 0);
    let sent: boolean;
    try {
      sent = this.send([Tag.REQ, id, op, body, flags]);
    } catch (err) {
      // A body msgpack cannot encode (a symbol, a cycle, an integer past 64 bits).
      const why = err instanceof Error ? err.message : String(err);
      this.#settleOut(
        id,
        st,
        new CircuitError("bad request", `${label}: arguments cannot be sent: ${why}`),
      );
      return { id, result, st };
    }
    if (!sent) {
      this.#settleOut(id, st, new CircuitError("bad request", `${label}: request is too large`));
    }
    return { id, result, st };
  }

  /**
   * A call without streams.
   *
   * @param op operation name
   * @param body request body
   * @param options signal
   * @returns the reply
   * @throws {CircuitError} what the callee threw, or why the call failed
   */
  request(
    op: string,
    body: unknown,
    options: { signal?: AbortSignal; timeoutMs?: number; label?: string } = {},
  ): Promise<unknown> {
    return this.call(op, body, options).result;
  }

  /**
   * Queue one message; false when it cannot be sent (too large, or closed).
   *
   * @param msg the message array
   * @returns whether it was queued
   */
  send(msg: unknown[]): boolean {
    if (this.#closed) return false;
    const bytes = packr.pack(msg);
    if (bytes.length > this.#o.config.maxFrameBytes) return false;
    this.#enqueue(bytes, bytes.length);
    return true;
  }

  /**
   * Queue a DATA message of a stream. Large bytes are not copied: the returned promise
   * resolves once they are sealed into a frame (or the mux closed), and the caller must
   * not change them before. Small ones are copied at once (returns true).
   *
   * @param id the call
   * @param bytes the chunk
   * @returns true, or a promise for when the bytes may be reused
   */
  sendData(id: number, bytes: Uint8Array): true | Promise<void> {
    if (bytes.length < DIRECT_DATA_BYTES || this.#closed) {
      this.send([Tag.DATA, id, bytes]);
      return true;
    }
    return new Promise<void>((sealed) => {
      const head = dataHead(id, bytes.length);
      this.#enqueue({ head, body: bytes, sealed }, head.length + bytes.length);
    });
  }

  #enqueue(e: Outgoing, size: number): void {
    this.#outbox.push(e);
    this.#queued += size;
    this.#stats.messagesOut++;
    if (!this.#pumping) {
      this.#pumping = true;
      queueMicrotask(() => this.#pump());
    }
  }

  /**
   * Feed one frame body read from the connection.
   *
   * @param body the frame's plaintext
   */
  receive(body: Uint8Array): void {
    if (this.#closed) return;
    this.#lastRecv = Date.now();
    this.#stats.framesIn++;
    let msgs: unknown[];
    try {
      msgs = packr.unpackMultiple(body) as unknown[];
    } catch (err) {
      return this.#violation(`undecodable frame (${(err as Error).message})`);
    }
    for (const m of msgs) {
      if (this.#closed) return;
      if (!Array.isArray(m) || typeof m[0] !== "number") {
        return this.#violation("message is not a tagged array");
      }
      this.#dispatch(m);
    }
  }

  /**
   * Close the mux: every call and stream fails with `reason`.
   *
   * @param reason why; defaults to a plain `closed`
   */
  close(reason?: CircuitError): void {
    if (this.#closed) return;
    const err = reason ?? new CircuitError("closed", `Connection to ${this.#o.peerName} closed`);
    this.#closed = err;
    this.#stopTicking();
    clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = undefined;
    for (const [id, st] of this.#out) {
      // Say which call the lost connection cut, when the caller named it.
      const e = st.label
        ? new CircuitError(err.code, `${st.label}: ${err.message}`, { cause: err })
        : err;
      st.up?.fail(e);
      st.down?.fail(e);
      this.#settleOut(id, st, e);
    }
    for (const st of this.#in.values()) {
      st.abort.abort(err);
      st.up?.fail(err);
      st.down?.fail(err);
    }
    this.#out.clear();
    this.#in.clear();
    for (const e of this.#outbox) if (!(e instanceof Uint8Array)) e.sealed();
    this.#outbox = [];
    this.#queued = 0;
    this.#o.onClose(err);
  }

  /**
   * Send GOAWAY with a reason, let it flush, then close.
   *
   * @param message the reason, for the peer's log
   */
  async goAway(message: string): Promise<void> {
    if (this.#closed) return;
    this.send([Tag.GOAWAY, 0, message]);
    await this.#flushed();
    this.close(new CircuitError("closed", `Connection to ${this.#o.peerName} closed: ${message}`));
  }

  async #flushed(): Promise<void> {
    for (let i = 0; i < 100 && (this.#pumping || this.#outbox.length > 0); i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async #pump(): Promise<void> {
    try {
      await this.#settle();
      while (this.#outbox.length > 0 && !this.#closed) {
        const max = this.#o.config.coalesceBytes;
        let n = 0, size = 0;
        while (n < this.#outbox.length) {
          const b = outgoingBytes(this.#outbox[n]);
          if (n > 0 && size + b > max) break;
          size += b;
          n++;
        }
        const parts: Uint8Array[] = [];
        const sealed: Array<() => void> = [];
        for (const e of this.#outbox.splice(0, n)) {
          if (e instanceof Uint8Array) parts.push(e);
          else {
            parts.push(e.head, e.body);
            sealed.push(e.sealed);
          }
        }
        this.#queued -= size;
        this.#stats.framesOut++;
        let written: Promise<void>;
        try {
          written = this.#o.writeFrame(parts, size);
        } finally {
          for (const f of sealed) f(); // sealed (or dropped): the bodies are their owners' again
        }
        await written;
      }
    } catch (err) {
      this.close(
        new CircuitError("unreachable", `Writing to ${this.#o.peerName} failed`, { cause: err }),
      );
    } finally {
      this.#pumping = false;
    }
  }

  /**
   * Let the microtasks already under way queue their messages before the first frame is
   * cut: a stream's DATA and the END that follows it a few promise turns later, or a reply
   * and its stream's last bytes, then share one frame. Waits while the outbox still grows,
   * at most {@linkcode SETTLE_TURNS} turns (well under a microsecond each); no timer, so no
   * event-loop turn is added.
   */
  async #settle(): Promise<void> {
    let seen = this.#outbox.length, quiet = 0;
    for (let i = 0; i < SETTLE_TURNS && quiet < SETTLE_QUIET_TURNS; i++) {
      await undefined;
      if (this.#outbox.length === seen) quiet++;
      else {
        seen = this.#outbox.length;
        quiet = 0;
      }
    }
  }

  #tick(): void {
    const quietMs = Date.now() - this.#lastRecv;
    if (quietMs > this.#o.config.deadAfterMs) {
      this.close(
        new CircuitError(
          "unreachable",
          `Connection to ${this.#o.peerName} is dead: nothing received for ${this.#o.config.deadAfterMs} ms`,
        ),
      );
      return;
    }
    // Only a quiet connection needs proof of life; traffic is proof enough.
    if (quietMs < this.#o.config.pingIntervalMs) return;
    this.#pingSentAt = performance.now();
    this.send([Tag.PING, 0]);
  }

  #violation(what: string): void {
    this.#o.log?.(`closing connection to ${this.#o.peerName}: protocol violation: ${what}`);
    void this.goAway(`protocol violation: ${what}`);
  }

  #mine(id: number): boolean {
    return (id & 1) === (this.#o.parity & 1);
  }

  #dispatch(m: unknown[]): void {
    const tag = m[0] as number;
    const id = m[1] as number;
    if (tag !== Tag.PING && tag !== Tag.PONG && tag !== Tag.GOAWAY && !Number.isInteger(id)) {
      return this.#violation(`message ${tag} without an id`);
    }
    switch (tag) {
      case Tag.REQ:
        return this.#handleReq(id, m[2], m[3], m[4]);
      case Tag.RES:
        return this.#handleRes(id, m[2], m[3]);
      case Tag.CANCEL:
        return this.#handleCancel(id);
      case Tag.DATA:
        return this.#handleData(id, m[2]);
      case Tag.CREDIT:
        return this.#handleCredit(id, m[2]);
      case Tag.END:
        return this.#handleEnd(id);
      case Tag.RESET:
        return this.#handleReset(id, m[2]);
      case Tag.PING:
        this.send([Tag.PONG, 0]);
        return;
      case Tag.PONG:
        if (this.#pingSentAt) this.#stats.rttMs = performance.now() - this.#pingSentAt;
        return;
      case Tag.GOAWAY:
        this.close(
          new CircuitError("closed", `${this.#o.peerName} closed the connection: ${String(m[2])}`),
        );
        return;
      default:
        return this.#violation(`unknown message tag ${tag}`);
    }
  }

  #handleReq(id: number, op: unknown, body: unknown, flags: unknown): void {
    if (this.#mine(id) || this.#in.has(id) || typeof op !== "string") {
      return this.#violation(`bad request id ${id}`);
    }
    const f = typeof flags === "number" ? flags : 0;
    const st: InState = { abort: new AbortController(), up: null, down: null, replied: false };
    const gc = () => this.#gcIn(id, st);
    if (f & FLAG_UPLOAD) st.up = new RecvSide(this, id, UP, gc);
    if (f & FLAG_DOWNLOAD) {
      st.down = new SendSide(this, id, DOWN, this.#o.config.maxChunkBytes, gc);
    }
    this.#in.set(id, st);
    const handler = this.#o.handler;
    const up = st.up, down = st.down;
    const call: IncomingCall = {
      op,
      body,
      signal: st.abort.signal,
      // Both made on first use: takeUpload, uploadEnded and sendDownload need neither.
      get upload() {
        return up?.readable ?? null;
      },
      get download() {
        return down?.writable ?? null;
      },
      takeUpload: () => up?.takeWhole() ?? null,
      sendDownload: (bytes) => down?.sendWhole(bytes) ?? false,
      uploadEnded: () => up ? up.emptyEnd() : Promise.resolve(false),
    };
    SIDES.set(call, st);
    const run = handler
      ? Promise.resolve().then(() => handler(call))
      : Promise.reject(new CircuitError("bad request", "This endpoint serves no calls"));
    run.then(
      (value) => this.#reply(id, st, null, value),
      (err) => this.#reply(id, st, toWireError(err), null),
    );
  }

  #reply(id: number, st: InState, err: unknown, value: unknown): void {
    st.replied = true;
    if (this.#in.get(id) !== st) return; // canceled or closed meanwhile
    // The call ends with its handler: a stream it left open is reset, so the caller's
    // reader or writer fails instead of waiting forever.
    if ((st.up && !st.up.done) || (st.down && !st.down.done)) {
      const over = new CircuitError("closed", "The call ended before its stream did");
      st.up?.reset(over);
      st.down?.reset(over);
    }
    if (!this.send([Tag.RES, id, err, value ?? null])) {
      this.send([
        Tag.RES,
        id,
        { code: "bad request", message: "Reply is too large to send" },
        null,
      ]);
    }
    this.#gcIn(id, st);
  }

  #handleRes(id: number, err: unknown, value: unknown): void {
    const st = this.#out.get(id);
    if (!st || st.settled) return; // late reply to a canceled call
    this.#settleOut(id, st, err ? fromWireError(err) : null, value);
  }

  #handleCancel(id: number): void {
    const st = this.#in.get(id);
    if (!st) return;
    this.#in.delete(id);
    const err = new CircuitError("aborted", "The caller canceled the call");
    st.abort.abort(err);
    st.up?.fail(err);
    st.down?.fail(err);
  }

  #handleData(id: number, chunk: unknown): void {
    if (!(chunk instanceof Uint8Array)) return this.#violation("DATA without bytes");
    const side = this.#mine(id) ? this.#out.get(id)?.down : this.#in.get(id)?.up;
    if (side && !side.data(chunk)) this.#violation(`stream ${id} overran its credit`);
  }

  #handleCredit(id: number, n: unknown): void {
    if (typeof n !== "number" || n <= 0 || n > 1 << 30) return this.#violation("bad CREDIT");
    const side = this.#mine(id) ? this.#out.get(id)?.up : this.#in.get(id)?.down;
    side?.grant(n);
  }

  #handleEnd(id: number): void {
    const side = this.#mine(id) ? this.#out.get(id)?.down : this.#in.get(id)?.up;
    side?.end();
  }

  #handleReset(id: number, dir: unknown): void {
    const st = this.#mine(id) ? this.#out.get(id) : this.#in.get(id);
    if (!st) return;
    const err = new CircuitError("closed", "The peer reset the stream");
    if (dir === UP) st.up?.fail(err);
    else st.down?.fail(err);
  }

  #cancelOut(id: number, st: OutState, err: CircuitError): void {
    if (this.#out.get(id) === st) this.send([Tag.CANCEL, id]);
    st.up?.fail(err);
    st.down?.fail(err);
    this.#settleOut(id, st, err);
    this.#out.delete(id);
  }

  /**
   * Arm the deadline timer for `at`. Calls share one timer, so a call costs no timer
   * operation unless it is due before every call already in flight (a timer set and
   * cleared per call was a tenth of a small call's CPU).
   */
  #armDeadline(at: number): void {
    if (this.#deadlineTimer !== undefined) clearTimeout(this.#deadlineTimer);
    this.#deadlineAt = at;
    this.#deadlineTimer = setTimeout(
      () => this.#expire(),
      Math.max(0, at - performance.now()),
    ) as unknown as number;
    Deno.unrefTimer(this.#deadlineTimer); // the connection keeps the process alive, not this
  }

  /** Time out every call that is due; re-arm for the next. */
  #expire(): void {
    this.#deadlineTimer = undefined;
    this.#deadlineAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const [id, st] of [...this.#out]) {
      if (st.deadline <= now) this.#cancelOut(id, st, st.timeout!());
      else if (st.deadline < next) next = st.deadline;
    }
    if (next < Infinity && !this.#closed) this.#armDeadline(next);
  }

  #settleOut(id: number, st: OutState, err: CircuitError | null, value?: unknown): void {
    if (!st.settled) {
      st.settled = true;
      if (err) st.reject(err);
      else st.resolve(value);
    }
    this.#gcOut(id, st);
  }

  #gcOut(id: number, st: OutState): void {
    if (st.settled && (st.up?.done ?? true) && (st.down?.done ?? true)) {
      st.unlisten();
      if (this.#out.get(id) === st) this.#out.delete(id);
    }
  }

  #gcIn(id: number, st: InState): void {
    if (st.replied && (st.up?.done ?? true) && (st.down?.done ?? true)) {
      if (this.#in.get(id) === st) this.#in.delete(id);
    }
  }
}
