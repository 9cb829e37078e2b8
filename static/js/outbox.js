// @ts-check
// Messages wait here until the server acknowledges them: typed offline, sent when the socket
// is back, once each and in order, always with the same client_msg_id (the server stores a
// repeat only once). In memory by default; in IndexedDB only on a personal device.

import { outboxStore } from './store.js';

const ACK_TIMEOUT = 15000;

export class Outbox {
  /**
   * @param {object} o
   * @param {boolean} o.persist            keep entries in IndexedDB (personal device only)
   * @param {(frame: object) => boolean} o.transmit  send a frame; false when the socket is closed
   * @param {(entry: object, error: object) => void} o.onFailed  the server refused it for good
   */
  constructor({ persist, transmit, onFailed }) {
    this.persist = persist;
    this.transmit = transmit;
    this.onFailed = onFailed;
    this.entries = [];
    this.inFlight = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    this.holdUntil = 0;
  }

  /** Entries a previous page of this personal device left unsent. */
  async load() {
    if (!this.persist) return [];
    try {
      const stored = await outboxStore.all();
      stored.sort((a, b) => a.seq - b.seq);
      for (const entry of stored) {
        if (!this.entries.some((e) => e.client_msg_id === entry.client_msg_id)) this.entries.push(entry);
      }
      this.entries.sort((a, b) => a.seq - b.seq);
    } catch {
      // private mode or storage refused: memory only
    }
    return this.entries;
  }

  add(entry) {
    const item = { ...entry, seq: Date.now() * 1000 + (this.entries.length % 1000) };
    this.entries.push(item);
    if (this.persist) outboxStore.put(item).catch(() => {});
    this.pump();
    return item;
  }

  forConversation(conversationId) {
    return this.entries.filter((e) => e.conversation_id === conversationId);
  }

  get size() {
    return this.entries.length;
  }

  /** Send the oldest entry if nothing is waiting for an ack (called on open and after each ack). */
  pump() {
    if (this.inFlight || !this.entries.length) return;
    const wait = this.holdUntil - Date.now();
    if (wait > 0) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.pump(), wait);
      return;
    }
    const head = this.entries[0];
    const frame = { type: 'send', client_msg_id: head.client_msg_id, conversation_id: head.conversation_id, body: head.body };
    if (head.reply_to) frame.reply_to = head.reply_to;
    if (!this.transmit(frame)) return;  // closed: the next 'open' pumps again
    this.inFlight = head.client_msg_id;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      // No ack: send it again (same id, so never twice stored).
      this.inFlight = null;
      this.pump();
    }, ACK_TIMEOUT);
  }

  /** The server stored it (an ack, or our own message coming back as an event). */
  done(clientMsgId) {
    const index = this.entries.findIndex((e) => e.client_msg_id === clientMsgId);
    if (index === -1) return false;
    this.entries.splice(index, 1);
    if (this.persist) outboxStore.remove(clientMsgId).catch(() => {});
    if (this.inFlight === clientMsgId) {
      this.inFlight = null;
      clearTimeout(this.timer);
    }
    this.pump();
    return true;
  }

  /** An error frame; true when it was about one of ours. */
  refused(frame) {
    const entry = this.entries.find((e) => e.client_msg_id === frame.ref);
    if (!entry) return false;
    if (this.inFlight === entry.client_msg_id) {
      this.inFlight = null;
      clearTimeout(this.timer);
    }
    if (frame.code === 'rate_limited' || frame.code === 'busy') {  // nothing stored: send again later
      this.holdUntil = Date.now() + Math.max(0.5, Number(frame.retry_after) || 1) * 1000;
      this.pump();
      return true;
    }
    this.done(entry.client_msg_id);
    this.onFailed(entry, frame);
    return true;
  }

  /** The socket closed: whatever was in flight goes again on the next connection. */
  connectionLost() {
    this.inFlight = null;
    clearTimeout(this.timer);
  }

  clear() {
    this.entries = [];
    this.connectionLost();
  }
}
