/**
 * The membership schema: every message the protocol sends, its numeric code on the wire
 * and its fields. One protocol fact keeps one name through every layer: the `suspect`
 * message is handled by `handleSuspect` and changes state through `suspectNode`.
 *
 * On the wire each message is a msgpack map whose `t` is the numeric code; codes are
 * append-only. Unknown codes and malformed fields are dropped by {@linkcode decodeMessage}.
 *
 * @module
 */

import { Packr } from "msgpackr/pack";

const packr = new Packr({ useRecords: false, moreTypes: false });

/** Oldest protocol version this code speaks. */
export const PROTOCOL_VERSION_MIN = 1;
/** Newest protocol version this code speaks. */
export const PROTOCOL_VERSION_MAX = 1;

/**
 * The highest incarnation a member may have, and the highest any message may carry:
 * 2^32 − 1. A member raises its incarnation by one per refutation, so at one refutation
 * per probe interval (500 ms) reaching it takes 68 years; only a forged or broken
 * message gets near it. Messages above it are malformed, so `max(ours, accused) + 1`
 * stays an exact integer; at the bound a refutation stays at the bound, and an `alive`
 * at the bound beats a suspicion, death or leave at the bound (see `state.ts`), so no
 * accusation can keep a live member out.
 */
export const MAX_INCARNATION = 2 ** 32 - 1;

/** Most member records one `sync` (or one push-pull over the hook) may carry. */
export const MAX_SYNC_RECORDS = 16_384;

/** A UDP address. */
export interface Addr {
  /** IP address or host name. */
  host: string;
  /** UDP port. */
  port: number;
}

/** Member states: `alive` and `suspect` are members; `dead` and `left` are not. */
export type MemberStatus = "alive" | "suspect" | "dead" | "left";

/** `ping`: are you there? Only the member named `id` answers (not a restarted one). */
export interface Ping {
  /** The message kind. */
  type: "ping";
  /** Sequence number echoed by the ack. */
  seq: number;
  /** The member the sender believes lives at this address. */
  id: string;
}

/** `indirectPing` (ping-req): please ping `id` at `addr` for me. */
export interface IndirectPing {
  /** The message kind. */
  type: "indirectPing";
  /** The requester's sequence number, echoed by the forwarded ack or nack. */
  seq: number;
  /** The member to ping. */
  id: string;
  /** Its address. */
  addr: Addr;
  /** Send a nack if the target stays silent. */
  nack: boolean;
}

/** `ack`: answer to a ping, possibly forwarded by a helper. */
export interface Ack {
  /** The message kind. */
  type: "ack";
  /** The ping's sequence number. */
  seq: number;
}

/** `nack`: a helper heard nothing from the target (but we heard the helper). */
export interface Nack {
  /** The message kind. */
  type: "nack";
  /** The requester's sequence number. */
  seq: number;
}

/** `alive`: a member and the incarnation it is alive at. */
export interface Alive {
  /** The message kind. */
  type: "alive";
  /** Member id. */
  id: string;
  /** Its circuit URL. */
  url: string;
  /** Its membership (UDP) address. */
  addr: Addr;
  /** Incarnation: only the member raises it, to refute suspicion. */
  inc: number;
  /** When the member's process started, ms since the epoch: the later start owns an address. */
  start: number;
}

/** `suspect`: `from` could not reach member `id` at incarnation `inc`. */
export interface Suspect {
  /** The message kind. */
  type: "suspect";
  /** Member id. */
  id: string;
  /** Its incarnation as the accuser knew it. */
  inc: number;
  /** The accuser. */
  from: string;
}

/** `dead`: member `id` at incarnation `inc` failed (suspicion expired at `from`). */
export interface Dead {
  /** The message kind. */
  type: "dead";
  /** Member id. */
  id: string;
  /** Its incarnation. */
  inc: number;
  /** Who declared it. */
  from: string;
}

/** `left`: member `id` left the cluster on purpose. */
export interface Left {
  /** The message kind. */
  type: "left";
  /** Member id. */
  id: string;
  /** Its incarnation. */
  inc: number;
}

/** One member's full state, as exchanged in a push-pull. */
export interface MemberRecord {
  /** Member id. */
  id: string;
  /** Its circuit URL. */
  url: string;
  /** Its membership (UDP) address. */
  addr: Addr;
  /** Its incarnation. */
  inc: number;
  /** Its process start, ms since the epoch. */
  start: number;
  /** Its state. */
  status: MemberStatus;
}

/** `sync`: one chunk of the sender's full state (push-pull). */
export interface Sync {
  /** The message kind. */
  type: "sync";
  /** The push-pull's sequence number; the reply's chunks carry the same. */
  seq: number;
  /** Whether the receiver should answer with its own state (first chunk of a request). */
  reply: boolean;
  /** Whether this chunk is part of an answer (so `seq` is the receiver's). */
  answer: boolean;
  /** Members in this chunk. */
  records: MemberRecord[];
}

/** Any membership message. */
export type Message = Ping | IndirectPing | Ack | Nack | Alive | Suspect | Dead | Left | Sync;
/** A message's kind. */
export type MessageType = Message["type"];
/** Gossip about one member: what the broadcast queue holds. */
export type Broadcast = Alive | Suspect | Dead | Left;

/** Numeric wire codes, append-only. */
export const MESSAGE_CODES: Readonly<Record<MessageType, number>> = Object.freeze({
  ping: 0,
  indirectPing: 1,
  ack: 2,
  nack: 3,
  alive: 4,
  suspect: 5,
  dead: 6,
  left: 7,
  sync: 8,
});

const TYPES = new Map(Object.entries(MESSAGE_CODES).map(([t, c]) => [c, t as MessageType]));
const STATUSES: ReadonlySet<unknown> = new Set(["alive", "suspect", "dead", "left"]);

type Check = (v: unknown) => boolean;
const isUint: Check = (v) => Number.isSafeInteger(v) && (v as number) >= 0;
const isInc: Check = (v) => isUint(v) && (v as number) <= MAX_INCARNATION;
/** Visible ASCII only: nothing a peer sends can break a log line or a terminal. */
const VISIBLE = /^[\x21-\x7e]+$/;
const isText = (max: number): Check => (v) =>
  typeof v === "string" && v.length > 0 && v.length <= max && VISIBLE.test(v);
const isId = isText(128);
const isUrl = isText(1024);
/** An IP address or a host name (IPv6 scope ids included). */
const isHost: Check = (v) => isText(255)(v) && /^[0-9A-Za-z.:_%-]+$/.test(v as string);
const isAddr: Check = (v) => {
  const a = v as Addr;
  return !!a && typeof a === "object" && isHost(a.host) && Number.isInteger(a.port) &&
    a.port > 0 && a.port < 65536;
};
const RECORD: Record<string, Check> = {
  id: isId,
  url: isUrl,
  addr: isAddr,
  inc: isInc,
  start: isUint,
  status: (v) => STATUSES.has(v),
};
const isRecord: Check = (v) => !!v && typeof v === "object" && fieldsOk(v, RECORD);

/** The fields of each message and how each is checked. */
const SCHEMA: Record<MessageType, Record<string, Check>> = {
  ping: { seq: isUint, id: isId },
  indirectPing: { seq: isUint, id: isId, addr: isAddr, nack: (v) => typeof v === "boolean" },
  ack: { seq: isUint },
  nack: { seq: isUint },
  alive: { id: isId, url: isUrl, addr: isAddr, inc: isInc, start: isUint },
  suspect: { id: isId, inc: isInc, from: isId },
  dead: { id: isId, inc: isInc, from: isId },
  left: { id: isId, inc: isInc },
  sync: {
    seq: isUint,
    reply: (v) => typeof v === "boolean",
    answer: (v) => typeof v === "boolean",
    records: (v) => Array.isArray(v) && v.length <= MAX_SYNC_RECORDS && v.every(isRecord),
  },
};

function fieldsOk(raw: object, fields: Record<string, Check>): boolean {
  return Object.entries(fields).every(([k, check]) => check((raw as Record<string, unknown>)[k]));
}

/**
 * Encode one message.
 *
 * @param msg the message
 * @returns its msgpack bytes
 */
export function encodeMessage(msg: Message): Uint8Array {
  const { type, ...fields } = msg;
  return packr.pack({ t: MESSAGE_CODES[type], ...fields });
}

/**
 * Decode and check one message.
 *
 * @param bytes what arrived
 * @returns the message, or null when it is malformed or of an unknown kind
 */
export function decodeMessage(bytes: Uint8Array): Message | null {
  let raw: Record<string, unknown>;
  try {
    raw = packr.unpack(bytes);
  } catch {
    return null;
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) return null;
  const type = TYPES.get(raw.t as number);
  if (!type || !fieldsOk(raw, SCHEMA[type])) return null;
  const msg: Record<string, unknown> = { type };
  Object.assign(msg, pick(raw, SCHEMA[type]));
  if (type === "sync") msg.records = (raw.records as MemberRecord[]).map((r) => pick(r, RECORD));
  return msg as unknown as Message;
}

/** Copy only the schema's fields, so nothing unexpected travels further. */
function pick(raw: object, fields: Record<string, Check>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(fields)) out[k] = (raw as Record<string, unknown>)[k];
  const a = out.addr as Addr | undefined;
  if (a) out.addr = { host: a.host, port: a.port };
  return out;
}

/**
 * Check member records that came another way than a decoded `sync` (the push-pull hook).
 *
 * @param raw what the peer sent
 * @returns the well-formed records among the first {@linkcode MAX_SYNC_RECORDS}, copied field
 *   by field; malformed ones are left out
 */
export function checkRecords(raw: unknown): MemberRecord[] {
  if (!Array.isArray(raw)) return [];
  return raw.slice(0, MAX_SYNC_RECORDS).filter(isRecord).map((r) =>
    pick(r, RECORD) as unknown as MemberRecord
  );
}

/**
 * `host:port` of an address, for maps and messages.
 *
 * @param addr the address
 * @returns its text form (IPv6 in brackets)
 */
export function addrKey(addr: Addr): string {
  return addr.host.includes(":") ? `[${addr.host}]:${addr.port}` : `${addr.host}:${addr.port}`;
}
