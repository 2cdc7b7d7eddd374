/**
 * Dissemination, SWIM's "infection-style" half: news about members waits in the
 * {@linkcode BroadcastQueue} and rides on every packet we send anyway (pings, acks,
 * syncs); each gossip round sends what is left to a few random members. This module
 * also turns messages into signed packets and back; the socket stays behind a
 * {@linkcode PacketTransport}.
 *
 * @module
 */

import type { MembershipConfig } from "./config.ts";
import {
  type Addr,
  type Broadcast,
  decodeMessage,
  encodeMessage,
  type Message,
} from "./messages.ts";
import { BroadcastQueue, type BroadcastQueueStats } from "./queue.ts";
import {
  type DropReason,
  encodePacket,
  messageCost,
  packetBudget,
  type PacketTransport,
  PacketVerifier,
} from "./transport.ts";

/** Datagram counters for `stk`. */
export interface PacketStats {
  /** Datagrams sent. */
  sent: number;
  /** Datagrams accepted. */
  received: number;
  /** Datagrams dropped, by reason (`foreign`: refused by the transport's `admit` hook). */
  dropped: Record<DropReason, number>;
  /** Messages inside accepted datagrams that did not decode. */
  malformedMessages: number;
}

/** What {@linkcode Gossip} needs. */
export interface GossipOptions {
  /** Packet bound, queue bound, retransmit multiplier, replay window. */
  config: MembershipConfig;
  /** The cluster key. */
  key?: Uint8Array;
  /** Live members, ourselves included (sets the retransmit limit). */
  liveCount(): number;
  /** Where to log queue overflow. */
  log: { warn(message: string): void };
}

/** The broadcast queue and the packet codec around a transport. */
export class Gossip {
  #o: GossipOptions;
  #queue: BroadcastQueue;
  #verifier: PacketVerifier;
  #transport: PacketTransport | undefined;
  #counts = { sent: 0, received: 0, malformedMessages: 0 };
  #foreignAtDetach = 0;

  /**
   * Make the queue and the packet verifier; nothing is sent before {@linkcode Gossip.attach}.
   *
   * @param options config, key, member count, log
   */
  constructor(options: GossipOptions) {
    this.#o = options;
    this.#verifier = new PacketVerifier(options.key, options.config);
    this.#queue = new BroadcastQueue({
      maxDepth: options.config.maxQueuedBroadcasts,
      retransmitMult: options.config.retransmitMult,
      onDrop: (id) => options.log.warn(`broadcast queue full: dropped the oldest, about ${id}`),
    });
  }

  /** Messages waiting in the queue. */
  get depth(): number {
    return this.#queue.depth;
  }

  /**
   * Start sending through a transport and delivering what arrives.
   *
   * @param transport the bound transport
   * @param onMessage called for each message of each accepted packet
   */
  attach(transport: PacketTransport, onMessage: (msg: Message, from: Addr) => void): void {
    this.#transport = transport;
    transport.listen((bytes, from) => {
      if (this.#transport !== transport) return;
      const blobs = this.#verifier.verify(bytes);
      if (!blobs) return;
      this.#counts.received++;
      for (const blob of blobs) {
        const msg = decodeMessage(blob);
        if (msg) onMessage(msg, from);
        else this.#counts.malformedMessages++;
      }
    });
  }

  /**
   * Queue news about a member, replacing older news about it.
   *
   * @param msg the news
   * @param done called once it has been sent often enough (or was replaced or dropped)
   */
  broadcast(msg: Broadcast, done?: () => void): void {
    this.#queue.enqueue(msg.id, encodeMessage(msg), done);
  }

  /**
   * Send messages in one packet, filling the rest with queued gossip unless told not to.
   *
   * @param to where
   * @param messages what the packet is for (each must fit a packet)
   * @param piggyback whether to add queued gossip
   */
  send(to: Addr, messages: readonly Message[], piggyback = true): void {
    if (!this.#transport) return;
    const encoded = messages.map(encodeMessage);
    const used = encoded.reduce((sum, b) => sum + messageCost(b), 0);
    const budget = packetBudget(this.#o.config.maxPacketBytes, !!this.#o.key);
    if (piggyback) {
      encoded.push(...this.#queue.take(budget - used, this.#o.liveCount(), messageCost));
    }
    if (encoded.length === 0) return;
    this.#transport.send(to, encodePacket(encoded, this.#o.key));
    this.#counts.sent++;
  }

  /**
   * One gossip round: send queued news to each target while there is any.
   *
   * @param targets chosen members' addresses
   */
  round(targets: readonly Addr[]): void {
    for (const to of targets) {
      if (this.#queue.depth === 0) return;
      this.send(to, []);
    }
  }

  /**
   * Datagram counters, for `stk`.
   *
   * @returns a snapshot
   */
  packetStats(): PacketStats {
    const foreign = this.#transport?.foreign ?? this.#foreignAtDetach;
    return { ...this.#counts, dropped: { ...this.#verifier.dropped, foreign } };
  }

  /**
   * Broadcast queue counters, for `stk`.
   *
   * @returns a snapshot
   */
  queueStats(): BroadcastQueueStats {
    return this.#queue.stats();
  }

  /** Stop sending and delivering; drop the queue. The transport is the caller's to close. */
  detach(): void {
    this.#foreignAtDetach = this.#transport?.foreign ?? this.#foreignAtDetach;
    this.#transport = undefined;
    this.#queue.clear();
  }
}
