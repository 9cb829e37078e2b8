// The open conversation, live: the send form goes over the socket with a local echo,
// incoming messages appear at once, ticks follow the receipts, typing, presence, a "new
// messages" divider, reply-to, and older history when scrolling up. Without this script
// the same page works with its form, links and refresh.

import { announce, bodyNodes, dayLabel, h, hhmm, lastSeenLabel, preview, uuid } from './dom.js';

const TICK = '\u2713';

/** What the ticks of my message ``id`` say, from the other members' watermarks. */
export function tickState(id, others, kind) {
  if (!id) return { cls: 'pending', text: '\u{1F551} Sending', label: 'Sending' };
  if (!others.length) return null;
  const read = others.filter((o) => o.read >= id);
  const delivered = others.filter((o) => o.delivered >= id || o.read >= id);
  if (kind === 'group') {
    const names = read.map((o) => o.name).filter(Boolean).join(', ') || 'nobody yet';
    if (read.length === others.length) {
      return { cls: 'read', text: `${TICK}${TICK} Read by all`, label: 'Read by all', title: `Read by ${names}: message info`, info: true };
    }
    const all = delivered.length === others.length;
    const words = `Read by ${read.length} of ${others.length}`;
    return { cls: '', text: `${TICK}${all ? TICK : ''} ${words}`, label: `${all ? 'Delivered to all, ' : 'Sent, '}${words.toLowerCase()}`, title: `Read by ${names}: message info`, info: true };
  }
  if (read.length) return { cls: 'read', text: `${TICK}${TICK} Read`, label: 'Read' };
  if (delivered.length) return { cls: '', text: `${TICK}${TICK} Delivered`, label: 'Delivered' };
  return { cls: '', text: `${TICK} Sent`, label: 'Sent' };
}

/** The ticks of a message; in groups a link to the message's info page (who read it, when),
 * as the server draws it. */
function ticksElement(state, infoHref = null) {
  if (!state) return null;
  const attrs = { class: `ticks ${state.cls}`.trim(), 'aria-label': state.label, title: state.title || null };
  if (state.info && infoHref) return h('a', { ...attrs, href: infoHref }, state.text);
  return h('span', attrs, state.text);
}

export class Conversation {
  constructor(section, { me, myName, socket, outbox, onRead }) {
    this.section = section;
    this.id = Number(section.dataset.conversationId);
    this.me = me;
    this.myName = myName;
    this.kind = section.dataset.kind;
    this.title = section.dataset.title || '';
    this.historical = section.dataset.historical === '1';
    this.maxChars = Number(section.dataset.maxChars) || 4000;
    this.otherUserId = Number(section.dataset.otherUserId) || null;
    this.members = new Map();
    try {
      for (const m of JSON.parse(section.dataset.members || '[]')) this.members.set(m.id, m);
    } catch {
      // a page without members data: ticks stay as the server drew them
    }
    this.list = section.querySelector('#messages');
    this.scroller = section.querySelector('#scroller');
    this.form = section.querySelector('#compose');
    this.textarea = this.form ? this.form.querySelector('textarea[name="body"]') : null;
    this.statusLine = section.querySelector('#conv-status');
    this.socket = socket;
    this.outbox = outbox;
    this.onRead = onRead;
    this.typers = new Map();
    this.presence = null;
    this.reply = null;
    this.typingOn = false;
    this.typingSentAt = 0;
    this.maxId = 0;
    for (const li of this.list.querySelectorAll('li[id^="m"]')) this.maxId = Math.max(this.maxId, Number(li.id.slice(1)) || 0);
    this.readSent = this.maxId;  // the page's GET already moved my read watermark
    this.deliveredSent = this.maxId;
    this.dividerArmed = !this.list.querySelector('.new-divider');
    this.regroupDays();
  }

  /** Day separators in the browser's zone (the server drew them in its own): one before
   * each message whose day differs from the one above it. */
  regroupDays() {
    for (const li of this.list.querySelectorAll('li.day')) li.remove();
    let previous = null;
    for (const li of this.list.querySelectorAll('li[id^="m"]')) {
      const time = li.querySelector('time[datetime]');
      if (!time) continue;
      const label = dayLabel(new Date(time.getAttribute('datetime')));
      if (label !== previous) li.before(h('li', { class: 'day' }, h('span', {}, label)));
      previous = label;
    }
  }

  get others() {
    return [...this.members.values()].filter((m) => m.id !== this.me);
  }

  get visible() {
    return document.visibilityState === 'visible';
  }

  start() {
    this.section.classList.add('live');
    this.list.addEventListener('click', (event) => {
      const link = event.target.closest('a.reply-link');
      if (!link || this.historical) return;
      const li = link.closest('li.msg');
      if (!li || !li.dataset.id) return;
      event.preventDefault();
      this.startReply(li);
    });
    if (!this.historical && this.form && this.textarea) this.takeOverForm();
    this.setupOlder();
    document.addEventListener('visibilitychange', () => {
      if (this.visible) this.markSeen();
      else {
        this.dividerArmed = true;
        this.stopTyping();
      }
    });
    this.scrollInitially();
    this.keepEndInView();
  }

  // --- sending ----------------------------------------------------------------------------

  takeOverForm() {
    const adopted = this.form.querySelector('.replying input[name="reply_to"]');
    if (adopted) {
      const bar = adopted.closest('.replying');
      const li = document.getElementById(`m${adopted.value}`);
      this.reply = {
        id: Number(adopted.value),
        sender_name: bar.querySelector('strong')?.textContent || '',
        preview: li ? preview(li.querySelector('.body')?.textContent || '', 120) : '',
      };
      this.renderReplyBar();
    }
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.submit();
    });
    this.textarea.addEventListener('keydown', (event) => {
      // Enter sends, Shift+Enter is a new line. On touch screens Enter stays a new line.
      if (event.key !== 'Enter' || event.shiftKey || event.altKey || event.ctrlKey || event.metaKey || event.isComposing) return;
      if (window.matchMedia('(pointer: coarse)').matches) return;
      event.preventDefault();
      this.submit();
    });
    this.textarea.addEventListener('input', () => this.typed());
    this.textarea.addEventListener('blur', () => this.stopTyping());
  }

  submit() {
    const text = this.textarea.value.replace(/\r\n?/g, '\n').trim();
    if (!text) return;
    if (text.length > this.maxChars) {
      this.showError(`A message can be at most ${this.maxChars} characters (${text.length} typed).`);
      return;
    }
    this.showError('');
    this.stopTyping();
    const entry = {
      client_msg_id: uuid(),
      conversation_id: this.id,
      body: text,
      reply_to: this.reply ? this.reply.id : null,
      reply: this.reply,
      created_at: new Date().toISOString(),
    };
    this.textarea.value = '';
    this.reply = null;
    this.renderReplyBar();
    this.removeDivider();
    this.appendPending(entry);
    this.scrollToBottom();
    this.outbox.add(entry);
  }

  /** Entries an earlier page left in the outbox (personal device): show them as pending. */
  showQueued(entries) {
    for (const entry of entries) {
      if (!this.list.querySelector(`li[data-client-id="${CSS.escape(entry.client_msg_id)}"]`)) this.appendPending(entry);
    }
    if (entries.length) this.scrollToBottom();
  }

  appendPending(entry) {
    this.list.querySelector('li.empty')?.remove();
    const day = dayLabel(new Date(entry.created_at));
    const days = this.list.querySelectorAll('li.day');
    if (!days.length || days[days.length - 1].textContent.trim() !== day) this.list.append(h('li', { class: 'day' }, h('span', {}, day)));
    this.list.append(this.renderPending(entry));
  }

  showError(text) {
    let p = this.form.querySelector('#compose-error');
    if (!text) {
      if (p) p.remove();
      this.textarea.removeAttribute('aria-describedby');
      return;
    }
    if (!p) {
      p = h('p', { class: 'error-text', role: 'alert', id: 'compose-error' });
      this.textarea.before(p);
    }
    p.textContent = text;
    this.textarea.setAttribute('aria-describedby', 'compose-error');
  }

  /** The server refused a queued message for good: say so, and give the text back. */
  failed(entry, error) {
    const li = this.list.querySelector(`li[data-client-id="${CSS.escape(entry.client_msg_id)}"]`);
    if (li) {
      li.classList.remove('pending');
      li.classList.add('failed');
      li.querySelector('.ticks')?.replaceWith(h('span', { class: 'ticks failed-mark' }, '! Not sent'));
    }
    this.showError(`Not sent: ${error.message || 'the server refused this message.'}`);
    if (!this.textarea.value.trim()) this.textarea.value = entry.body;
  }

  typed() {
    if (!this.socket.isOpen) return;
    const has = this.textarea.value.trim() !== '';
    if (has && Date.now() - this.typingSentAt > 3000) {
      if (this.socket.send({ type: 'typing', conversation_id: this.id, typing: true })) {
        this.typingOn = true;
        this.typingSentAt = Date.now();
      }
    } else if (!has) this.stopTyping();
  }

  stopTyping() {
    if (!this.typingOn) return;
    this.typingOn = false;
    this.typingSentAt = 0;
    this.socket.send({ type: 'typing', conversation_id: this.id, typing: false });
  }

  // --- reply-to ---------------------------------------------------------------------------

  startReply(li) {
    const mine = li.classList.contains('mine');
    this.reply = {
      id: Number(li.dataset.id),
      sender_name: li.dataset.sender || (mine ? this.myName : this.title),
      preview: preview(li.querySelector('.body')?.textContent || '', 120),
    };
    this.renderReplyBar();
    // The bar takes its height from the message list: keep the message being answered in view.
    this.keepInView(li);
    this.textarea?.focus({ preventScroll: true });
  }

  renderReplyBar() {
    for (const old of this.form.querySelectorAll('.replying')) old.remove();
    if (!this.reply) return;
    const cancel = h('button', { type: 'button', class: 'link-button', 'aria-label': 'Cancel the reply' }, 'Cancel');
    cancel.addEventListener('click', () => {
      this.reply = null;
      this.renderReplyBar();
      this.textarea.focus();
    });
    const bar = h('div', { class: 'replying', id: 'reply-bar' },
      'Replying to ', h('strong', { dir: 'auto' }, this.reply.sender_name), ': ', h('span', { dir: 'auto' }, this.reply.preview), ' ', cancel);
    const label = this.form.querySelector('label[for="body"]') || this.textarea;
    this.form.insertBefore(bar, this.form.querySelector('#compose-error') || label);
  }

  // --- drawing messages -------------------------------------------------------------------

  renderPending(entry) {
    const li = h('li', { class: 'msg mine pending', dataset: { clientId: entry.client_msg_id, sender: this.myName } });
    if (entry.reply) li.append(this.quote(entry.reply.id, entry.reply.sender_name, entry.reply.preview));
    li.append(h('div', { class: 'body', dir: 'auto' }, bodyNodes(entry.body)));
    const when = new Date(entry.created_at);
    li.append(h('div', { class: 'meta' }, h('time', { datetime: when.toISOString() }, hhmm(when)), ticksElement(tickState(0))));
    return li;
  }

  quote(id, senderName, text) {
    return h('a', { class: 'quote', href: `#m${id}` },
      h('span', { class: 'sender', dir: 'auto' }, senderName || ''), ' ',
      // A quote from before I joined comes without its text (as the page shows it).
      h('span', { class: 'quote-text', dir: 'auto' }, senderName || text ? preview(text || '', 120) : 'an earlier message'));
  }

  renderMessage(m) {
    const when = new Date(m.created_at);
    const time = h('time', { datetime: when.toISOString() }, hhmm(when));
    if (m.kind === 'system') {
      return h('li', { class: 'msg system', id: `m${m.id}` }, h('span', { dir: 'auto' }, m.body), ' ', time);
    }
    const mine = m.sender_id === this.me;
    const li = h('li', { class: `msg ${mine ? 'mine' : 'theirs'}`, id: `m${m.id}`, dataset: { id: String(m.id), sender: m.sender_name || '' } });
    if (this.kind === 'group' && !mine) li.append(h('span', { class: 'sender', dir: 'auto' }, m.sender_name || ''));
    if (m.reply_to) li.append(this.quote(m.reply_to.id, m.reply_to.sender_name, m.reply_to.preview));
    li.append(h('div', { class: 'body', dir: 'auto' }, bodyNodes(m.body)));
    li.append(h('div', { class: 'meta' }, time, mine ? ticksElement(tickState(m.id, this.others, this.kind), this.infoHref(m.id)) : null, this.replyLink(m.id)));
    return li;
  }

  replyLink(id) {
    return h('a', { class: 'reply-link', href: `/chats/${this.id}?reply_to=${id}`, 'aria-label': 'Reply to this message' }, 'Reply');
  }

  /** Our pending message came back from the server with its id. */
  confirm(li, m) {
    li.id = `m${m.id}`;
    li.dataset.id = String(m.id);
    delete li.dataset.clientId;
    li.classList.remove('pending');
    const meta = li.querySelector('.meta');
    const when = new Date(m.created_at);
    meta.replaceChildren(h('time', { datetime: when.toISOString() }, hhmm(when)), ticksElement(tickState(m.id, this.others, this.kind), this.infoHref(m.id)) || '', this.replyLink(m.id));
    this.maxId = Math.max(this.maxId, m.id);
  }

  /** Insert in id order: normally at the end, before my still-pending messages. */
  place(li, m) {
    this.list.querySelector('li.empty')?.remove();
    const newer = [...this.list.querySelectorAll('li[id^="m"]')].find((node) => Number(node.id.slice(1)) > m.id);
    if (newer) {
      newer.before(li);  // late and out of order (rare): no day separator juggling
      return;
    }
    let tail = null;  // my pending messages stay last
    for (let node = this.list.lastElementChild; node && (node.classList.contains('pending') || node.classList.contains('failed')); node = node.previousElementSibling) tail = node;
    const day = dayLabel(new Date(m.created_at));
    const days = this.list.querySelectorAll('li.day');
    const lastDay = days.length ? days[days.length - 1].textContent.trim() : null;
    const nodes = day !== lastDay ? [h('li', { class: 'day' }, h('span', {}, day)), li] : [li];
    if (tail) tail.before(...nodes);
    else this.list.append(...nodes);
  }

  removeDivider() {
    for (const d of this.list.querySelectorAll('.new-divider')) d.remove();
  }

  // --- frames -----------------------------------------------------------------------------

  /** A message event or sync entry; true when it belongs to this conversation. */
  onMessage(m) {
    if (m.conversation_id !== this.id) return false;
    if (this.historical) return true;
    if (document.getElementById(`m${m.id}`)) return true;
    const mineFromHere = m.sender_id === this.me && m.client_msg_id
      ? this.list.querySelector(`li[data-client-id="${CSS.escape(m.client_msg_id)}"]`) : null;
    if (mineFromHere) {
      this.confirm(mineFromHere, m);
      return true;
    }
    const fromOther = m.sender_id !== this.me;
    const nearBottom = this.isNearBottom();
    if (fromOther && m.kind === 'text' && !this.visible && this.dividerArmed) {
      this.removeDivider();
      this.place(h('li', { class: 'new-divider', id: 'new' }, h('span', {}, 'New messages')), { id: m.id - 0.5, created_at: m.created_at });
      this.dividerArmed = false;
    }
    this.place(this.renderMessage(m), m);
    this.maxId = Math.max(this.maxId, m.id);
    if (fromOther) {
      this.typers.delete(m.sender_id);
      this.renderStatus();
      if (m.kind === 'text') announce(`${m.sender_name}: ${preview(m.body, 200)}`);
    }
    if (nearBottom || !fromOther) this.scrollToBottom();
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

  onReceipt(f) {
    if (f.conversation_id !== this.id) return;
    if (f.user_id === this.me) {
      this.readSent = Math.max(this.readSent, f.read_id);
      return;
    }
    const member = this.members.get(f.user_id) || { id: f.user_id, name: '', read: 0, delivered: 0 };
    member.read = Math.max(member.read, f.read_id);
    member.delivered = Math.max(member.delivered, f.delivered_id, f.read_id);
    this.members.set(f.user_id, member);
    this.refreshTicks();
  }

  infoHref(messageId) {
    return `/chats/${this.id}/messages/${messageId}/info`;
  }

  refreshTicks() {
    const others = this.others;
    for (const li of this.list.querySelectorAll('li.msg.mine[data-id]')) {
      const state = tickState(Number(li.dataset.id), others, this.kind);
      const old = li.querySelector('.ticks');
      const fresh = ticksElement(state, this.infoHref(Number(li.dataset.id)));
      if (old && fresh) {
        if (old.textContent !== fresh.textContent || old.className !== fresh.className) old.replaceWith(fresh);
      } else if (fresh) li.querySelector('.meta time')?.after(fresh);
      else if (old) old.remove();
    }
  }

  onTyping(f) {
    if (f.conversation_id !== this.id || f.user_id === this.me) return;
    const known = this.typers.get(f.user_id);
    if (known) clearTimeout(known.timer);
    if (f.typing) {
      const timer = setTimeout(() => {
        this.typers.delete(f.user_id);
        this.renderStatus();
      }, (Number(f.ttl) || 6) * 1000);
      this.typers.set(f.user_id, { name: f.name || 'Someone', timer });
    } else this.typers.delete(f.user_id);
    this.renderStatus();
  }

  onPresence(users) {
    if (!this.otherUserId) return;
    const mine = users.find((u) => u.user_id === this.otherUserId);
    if (!mine) return;
    this.presence = mine;
    this.renderStatus();
  }

  renderStatus() {
    if (!this.statusLine) return;
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
    if (f.event === 'member_added') {
      for (const id of ids) if (!this.members.has(id)) this.members.set(id, { id, name: '', read: this.maxId, delivered: this.maxId });
    }
    if (f.event === 'member_removed') for (const id of ids) this.members.delete(id);
    if (f.event === 'member_added' || f.event === 'member_removed') {
      const info = this.section.querySelector('.conv-info');
      if (info && this.kind === 'group') info.textContent = `${this.members.size} members`;
      this.refreshTicks();
    }
  }

  // --- scrolling and history --------------------------------------------------------------

  isNearBottom() {
    const s = this.scroller;
    return !s || s.scrollHeight - s.scrollTop - s.clientHeight < 150;
  }

  scrollToBottom() {
    if (this.scroller) this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  /** Scroll the list so that ``li`` is wholly visible (a little more when it is taller). */
  keepInView(li) {
    const s = this.scroller;
    if (!s || !li) return;
    const box = s.getBoundingClientRect();
    const r = li.getBoundingClientRect();
    const margin = 8;
    if (r.bottom > box.bottom - margin) s.scrollTop += Math.min(r.bottom - box.bottom + margin, r.top - box.top - margin);
    else if (r.top < box.top + margin) s.scrollTop -= box.top + margin - r.top;
  }

  /** When the list's box shrinks (the reply bar, an error line, a taller message box, the
   * on-screen keyboard), a list that was at its end stays at its end, and the message being
   * answered stays in view: the compose form must never cover the last message. */
  keepEndInView() {
    const s = this.scroller;
    if (!s || !('ResizeObserver' in window)) return;
    const atEnd = () => s.scrollHeight - s.scrollTop - s.clientHeight < 8;
    this.atEnd = atEnd();
    s.addEventListener('scroll', () => { this.atEnd = atEnd(); }, { passive: true });
    let height = s.clientHeight;
    new ResizeObserver(() => {
      if (s.clientHeight === height) return;
      const shrank = s.clientHeight < height;
      height = s.clientHeight;
      if (!shrank) return;
      if (this.atEnd) this.scrollToBottom();
      else if (this.reply) this.keepInView(document.getElementById(`m${this.reply.id}`));
    }).observe(s);
  }

  scrollInitially() {
    if (!this.scroller || this.historical) return;
    if (location.hash === '#compose') return;  // a no-JS "Reply" link: the form is the point
    const divider = this.list.querySelector('.new-divider');
    if (divider) this.scroller.scrollTop = Math.max(0, divider.offsetTop - 24);
    else this.scrollToBottom();
  }

  setupOlder() {
    const link = [...this.section.querySelectorAll('p.older a')].find((a) => a.href.includes('before='));
    if (!link || this.historical) return;
    this.olderLink = link;
    link.addEventListener('click', (event) => {
      event.preventDefault();
      this.loadOlder();
    });
    if ('IntersectionObserver' in window) {
      this.observer = new IntersectionObserver((entries) => {
        if (entries.some((e) => e.isIntersecting)) this.loadOlder();
      }, { root: this.scroller, rootMargin: '300px 0px 0px 0px' });
      // Only once the first scroll to the bottom is done, or the top would load at once.
      requestAnimationFrame(() => this.observer.observe(link));
    }
  }

  async loadOlder() {
    if (this.loadingOlder || !this.olderLink) return;
    const first = this.list.querySelector('li.msg[id^="m"]');
    if (!first) return;
    const before = Number(first.id.slice(1));
    this.loadingOlder = true;
    this.olderLink.setAttribute('aria-busy', 'true');
    try {
      const response = await fetch(`/chats/${this.id}/messages.json?before=${before}`, {
        credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' },
      });
      if (response.redirected && new URL(response.url).pathname === '/login') {
        location.assign(response.url);
        return;
      }
      if (!response.ok) return;
      const data = await response.json();
      this.prepend(data.messages || []);
      if (!data.has_older) {
        this.observer?.disconnect();
        this.olderLink.closest('p.older')?.remove();
        this.olderLink = null;
      } else if (data.messages.length) {
        this.olderLink.href = `/chats/${this.id}?before=${data.messages[0].id}`;
      }
    } catch {
      // offline: the link still works once the network is back
    } finally {
      this.loadingOlder = false;
      this.olderLink?.removeAttribute('aria-busy');
    }
  }

  prepend(messages) {
    const fresh = messages.filter((m) => !document.getElementById(`m${m.id}`));
    if (!fresh.length) return;
    const s = this.scroller;
    const oldHeight = s.scrollHeight;
    const oldTop = s.scrollTop;
    const frag = document.createDocumentFragment();
    let day = null;
    for (const m of fresh) {
      const label = dayLabel(new Date(m.created_at));
      if (label !== day) {
        frag.append(h('li', { class: 'day' }, h('span', {}, label)));
        day = label;
      }
      frag.append(this.renderMessage(m));
    }
    const top = this.list.firstElementChild;
    if (top && top.classList.contains('day') && top.textContent.trim() === day) top.remove();
    this.list.prepend(frag);
    s.scrollTop = oldTop + (s.scrollHeight - oldHeight);
  }
}
