// @ts-check
// What the other members are doing: the status line under the title (typing, online, last
// seen) and the ticks of my messages as their receipts arrive (rule: ticks.js).

import { h, lastSeenLabel } from './dom.js';
import { setTicks, ticksFor } from './render.js';

/** @typedef {import('./ticks.js').Member} Member */

export class Status {
  /**
   * @param {{me: number, kind: string, otherUserId: number | null, statusLine: HTMLElement | null,
   *   list: HTMLElement, members: Member[], context: () => import('./render.js').Context}} o
   */
  constructor({ me, otherUserId, statusLine, list, members, context }) {
    this.me = me;
    this.otherUserId = otherUserId;
    this.statusLine = statusLine;
    this.list = list;
    this.context = context;
    /** @type {Map<number, Member>} */
    this.members = new Map();
    for (const m of members) this.members.set(m.id, m);
    /** @type {Map<number, {name: string, timer: ReturnType<typeof setTimeout>}>} */
    this.typers = new Map();
    /** @type {{online?: boolean, last_seen?: string | null} | null} */
    this.presence = null;
  }

  /** @returns {Member[]} */
  get others() {
    return [...this.members.values()].filter((m) => m.id !== this.me);
  }

  /** @param {{user_id: number, read_id: number, delivered_id: number}} f */
  onReceipt(f) {
    // Someone the page does not know yet joined after it loaded (their member_added was missed):
    // count them only from what this receipt shows they have, never for older messages.
    const member = this.members.get(f.user_id) || { id: f.user_id, name: '', read: 0, delivered: 0, from: Math.max(f.read_id, f.delivered_id) };
    member.read = Math.max(member.read, f.read_id);
    member.delivered = Math.max(member.delivered, f.delivered_id, f.read_id);
    this.members.set(f.user_id, member);
    this.refreshTicks();
  }

  /**
   * Members joined (their history starts after ``lastId``) or left.
   * @param {number[]} added
   * @param {number[]} removed
   * @param {number} lastId
   */
  membersChanged(added, removed, lastId) {
    for (const id of added) if (!this.members.has(id)) this.members.set(id, { id, name: '', read: lastId, delivered: lastId, from: lastId });
    for (const id of removed) this.members.delete(id);
    this.refreshTicks();
  }

  refreshTicks() {
    const c = this.context();
    for (const li of this.list.querySelectorAll('li.msg.mine[data-id]')) {
      setTicks(li, ticksFor(c, Number(/** @type {HTMLElement} */ (li).dataset.id)));
    }
  }

  /** A message from ``userId`` came: they stopped typing it. @param {number} userId */
  spoke(userId) {
    this.typers.delete(userId);
    this.render();
  }

  /** @param {{user_id: number, typing: boolean, name?: string, ttl?: number}} f */
  onTyping(f) {
    if (f.user_id === this.me) return;
    const known = this.typers.get(f.user_id);
    if (known) clearTimeout(known.timer);
    if (f.typing) {
      const timer = setTimeout(() => {
        this.typers.delete(f.user_id);
        this.render();
      }, (Number(f.ttl) || 6) * 1000);
      this.typers.set(f.user_id, { name: f.name || 'Someone', timer });
    } else this.typers.delete(f.user_id);
    this.render();
  }

  /** @param {{user_id: number, online?: boolean, last_seen?: string | null}[]} users */
  onPresence(users) {
    if (!this.otherUserId) return;
    const theirs = users.find((u) => u.user_id === this.otherUserId);
    if (!theirs) return;
    this.presence = theirs;
    this.render();
  }

  render() {
    if (!this.statusLine) return;
    /** @type {(string | HTMLElement)[]} */
    let parts = [];
    const names = [...this.typers.values()].map((t) => t.name);
    // Names are isolated (<bdi>): a right-to-left name keeps the sentence in order.
    if (names.length === 1) parts = [h('bdi', {}, names[0]), ' is typing\u2026'];
    else if (names.length === 2) parts = [h('bdi', {}, names[0]), ' and ', h('bdi', {}, names[1]), ' are typing\u2026'];
    else if (names.length > 2) parts = [`${names.length} people are typing\u2026`];
    else if (this.presence) {
      if (this.presence.online) parts = ['online'];
      else if (this.presence.last_seen) parts = [lastSeenLabel(new Date(this.presence.last_seen))];
    }
    this.statusLine.classList.toggle('typing', names.length > 0);
    const text = parts.map((part) => (typeof part === 'string' ? part : part.textContent)).join('');
    if (this.statusLine.textContent !== text) this.statusLine.replaceChildren(...parts);
  }
}
