// @ts-check
// The open conversation, live: incoming messages appear at once, in id order, with a "new
// messages" divider while the tab is hidden, and the server hears what I have read. The
// parts: render.js draws (from the page's <template>s), compose.js sends, status.js follows
// typing, presence and ticks, history.js scrolls and loads older messages. Without this
// script the same page works with its form, links and refresh.

import { Composer } from './compose.js';
import { announce, h, preview } from './dom.js';
import { History } from './history.js';
import { confirmPending, regroupDays, renderMessage, renderPending } from './render.js';
import { Status } from './status.js';

/** @typedef {import('./render.js').Message} Message */
/** @typedef {import('./render.js').Pending} Pending */

export class Conversation {
  /**
   * @param {HTMLElement} section the page's section.conversation
   * @param {object} o
   * @param {number} o.me
   * @param {string} o.myName
   * @param {{send: (frame: object) => boolean, isOpen: boolean}} o.socket
   * @param {{add: (entry: Pending) => void}} o.outbox
   * @param {(conversationId: number) => void} o.onRead
   */
  constructor(section, { me, myName, socket, outbox, onRead }) {
    this.section = section;
    this.id = Number(section.dataset.conversationId);
    this.me = me;
    this.myName = myName;
    this.kind = section.dataset.kind || 'direct';
    this.title = section.dataset.title || '';
    this.historical = section.dataset.historical === '1';
    this.maxChars = Number(section.dataset.maxChars) || 4000;
    this.socket = socket;
    this.outbox = outbox;
    this.onRead = onRead;
    const list = section.querySelector('#messages');
    if (!list) throw new Error('the conversation has no message list');
    this.list = /** @type {HTMLElement} */ (list);
    let members = [];
    try {
      members = JSON.parse(section.dataset.members || '[]');
    } catch {
      // a page without members data: ticks stay as the server drew them
    }
    this.status = new Status({
      me,
      kind: this.kind,
      otherUserId: Number(section.dataset.otherUserId) || null,
      statusLine: section.querySelector('#conv-status'),
      list: this.list,
      members,
      context: () => this.context,
    });
    const form = /** @type {HTMLFormElement | null} */ (section.querySelector('#compose'));
    const textarea = form ? /** @type {HTMLTextAreaElement | null} */ (form.querySelector('textarea[name="body"]')) : null;
    this.composer = form && textarea && !this.historical ? new Composer(form, textarea, this) : null;
    this.history = new History({
      id: this.id,
      section,
      list: this.list,
      scroller: section.querySelector('#scroller'),
      historical: this.historical,
      reply: () => this.composer && this.composer.reply,
      insertOlder: (messages) => {
        this.list.prepend(...messages.map((m) => renderMessage(m, this.context)));
        regroupDays(this.list);
      },
    });
    this.maxId = 0;
    for (const li of this.list.querySelectorAll('li[id^="m"]')) this.maxId = Math.max(this.maxId, Number(li.id.slice(1)) || 0);
    this.readSent = this.maxId;  // the page's GET already moved my read watermark
    this.deliveredSent = this.maxId;
    this.dividerArmed = !this.list.querySelector('.new-divider');
    regroupDays(this.list);
  }

  /** What drawing a message needs. @returns {import('./render.js').Context} */
  get context() {
    return { id: this.id, me: this.me, myName: this.myName, kind: this.kind, others: this.status.others };
  }

  get visible() {
    return document.visibilityState === 'visible';
  }

  start() {
    this.section.classList.add('live');
    this.list.addEventListener('click', (event) => {
      const link = event.target instanceof Element ? event.target.closest('a.reply-link') : null;
      if (!link || !this.composer) return;
      const li = /** @type {HTMLElement | null} */ (link.closest('li.msg'));
      if (!li || !li.dataset.id) return;
      event.preventDefault();
      this.composer.startReply(li);
    });
    this.composer?.start();
    document.addEventListener('visibilitychange', () => {
      if (this.visible) this.markSeen();
      else {
        this.dividerArmed = true;
        this.composer?.stopTyping();
      }
    });
    this.history.start();
  }

  // --- the composer's host ------------------------------------------------------------------

  /** My message, typed here: drawn as pending at the end. @param {Pending} entry */
  sent(entry) {
    this.removeDivider();
    this.appendPending(entry);
    this.history.scrollToBottom();
  }

  /** @param {Element | null} li */
  keepInView(li) {
    this.history.keepInView(li);
  }

  // --- placing messages -------------------------------------------------------------------

  /** Entries an earlier page left in the outbox (personal device): show them as pending.
   * @param {Pending[]} entries */
  showQueued(entries) {
    for (const entry of entries) {
      if (!this.list.querySelector(`li[data-client-id="${CSS.escape(entry.client_msg_id)}"]`)) this.appendPending(entry);
    }
    if (entries.length) this.history.scrollToBottom();
  }

  /** @param {Pending} entry */
  appendPending(entry) {
    this.list.querySelector('li.empty')?.remove();
    this.list.append(renderPending(entry, this.context));
    regroupDays(this.list);
  }

  /** The server refused a queued message for good. @param {Pending} entry @param {{message?: string}} error */
  failed(entry, error) {
    const li = this.list.querySelector(`li[data-client-id="${CSS.escape(entry.client_msg_id)}"]`);
    if (li) {
      li.classList.remove('pending');
      li.classList.add('failed');
      li.querySelector('.ticks')?.replaceWith(h('span', { class: 'ticks failed-mark' }, '! Not sent'));
    }
    this.composer?.failed(entry, error);
  }

  /**
   * Insert in id order: normally at the end, before my still-pending messages.
   * @param {Element} li
   * @param {number} id
   */
  place(li, id) {
    this.list.querySelector('li.empty')?.remove();
    const newer = [...this.list.querySelectorAll('li[id^="m"]')].find((node) => Number(node.id.slice(1)) > id);
    if (newer) newer.before(li);
    else {
      let tail = null;  // my pending messages stay last
      for (let node = this.list.lastElementChild; node && (node.classList.contains('pending') || node.classList.contains('failed')); node = node.previousElementSibling) tail = node;
      if (tail) tail.before(li);
      else this.list.append(li);
    }
  }

  removeDivider() {
    for (const d of this.list.querySelectorAll('.new-divider')) d.remove();
  }

  // --- frames -----------------------------------------------------------------------------

  /** A message event or sync entry; true when it belongs to this conversation.
   * @param {Message} m */
  onMessage(m) {
    if (m.conversation_id !== this.id) return false;
    if (this.historical) return true;
    if (document.getElementById(`m${m.id}`)) return true;
    const mineFromHere = m.sender_id === this.me && m.client_msg_id
      ? /** @type {HTMLElement | null} */ (this.list.querySelector(`li[data-client-id="${CSS.escape(m.client_msg_id)}"]`)) : null;
    if (mineFromHere) {
      confirmPending(mineFromHere, m, this.context);
      this.maxId = Math.max(this.maxId, m.id);
      regroupDays(this.list);
      return true;
    }
    const fromOther = m.sender_id !== this.me;
    const nearBottom = this.history.isNearBottom();
    const li = renderMessage(m, this.context);
    this.place(li, m.id);
    if (fromOther && m.kind === 'text' && !this.visible && this.dividerArmed) {
      this.removeDivider();
      li.before(h('li', { class: 'new-divider', id: 'new' }, h('span', {}, 'New messages')));
      this.dividerArmed = false;
    }
    regroupDays(this.list);
    this.maxId = Math.max(this.maxId, m.id);
    if (fromOther && m.sender_id !== null) {
      this.status.spoke(m.sender_id);
      if (m.kind === 'text') announce(`${m.sender_name}: ${preview(m.body, 200)}`);
    }
    if (nearBottom || !fromOther) this.history.scrollToBottom();
    this.markSeen();
    return true;
  }

  /** Tell the server what I have: read when the conversation is on screen, else delivered. */
  markSeen() {
    if (this.historical || !this.maxId) return;
    if (this.visible) {
      if (this.maxId > this.readSent && this.socket.send({ type: 'read', conversation_id: this.id, up_to_id: this.maxId })) {
        this.readSent = this.maxId;
        this.deliveredSent = Math.max(this.deliveredSent, this.maxId);
      }
      this.onRead(this.id);
    } else if (this.maxId > this.deliveredSent && this.socket.send({ type: 'delivered', conversation_id: this.id, up_to_id: this.maxId })) {
      this.deliveredSent = this.maxId;
    }
  }

  /** @param {{conversation_id: number, user_id: number, read_id: number, delivered_id: number}} f */
  onReceipt(f) {
    if (f.conversation_id !== this.id) return;
    if (f.user_id === this.me) {
      this.readSent = Math.max(this.readSent, f.read_id);
      return;
    }
    this.status.onReceipt(f);
  }

  /** @param {{conversation_id: number, user_id: number, typing: boolean, name?: string, ttl?: number}} f */
  onTyping(f) {
    if (f.conversation_id !== this.id) return;
    this.status.onTyping(f);
  }

  /** @param {{user_id: number, online?: boolean, last_seen?: string | null}[]} users */
  onPresence(users) {
    this.status.onPresence(users);
  }

  /** @param {{conversation?: {id: number, title: string}, event?: string, user_ids?: number[], history_from_id?: number}} f */
  onConversation(f) {
    if (!f.conversation || f.conversation.id !== this.id) return;
    const ids = f.user_ids || [];
    if (f.event === 'member_removed' && ids.includes(this.me)) {
      location.assign('/chats');
      return;
    }
    if (f.event === 'renamed' && this.kind === 'group') {
      this.title = f.conversation.title;
      const h1 = this.section.querySelector('#conv-title');
      if (h1) h1.textContent = this.title;
      const count = document.title.match(/^\(\d+\)\s+/);
      document.title = `${count ? count[0] : ''}${this.title} \u2014 MedChat`;
    }
    if (f.event === 'member_added' || f.event === 'member_removed') {
      // The server's floor: a page that is behind must not count new members for older messages.
      this.status.membersChanged(f.event === 'member_added' ? ids : [], f.event === 'member_removed' ? ids : [], f.history_from_id ?? this.maxId);
      const info = this.section.querySelector('.conv-info');
      if (info && this.kind === 'group') info.textContent = `${this.status.members.size} members`;
    }
  }
}
