// @ts-check
// The chat list, live: newest conversation first, previews, unread badges, and the unread
// total in the tab title. The same list is the /chats page and the left pane on a desktop.

import { h, hhmm, preview, setTitleCount } from './dom.js';

export class ChatList {
  constructor(ul, { me, currentId }) {
    this.ul = ul;
    this.me = me;
    this.currentId = currentId || null;
    this.refreshing = null;
  }

  item(conversationId) {
    return this.ul.querySelector(`li.chat-item[data-conversation-id="${Number(conversationId)}"]`);
  }

  /** The conversation's title as the list shows it (for notifications). */
  titleOf(conversationId) {
    const li = this.item(conversationId);
    return li ? li.querySelector('a').dataset.title || '' : '';
  }

  /** A new message: move its conversation to the top, with preview, time and unread count. */
  onMessage(m, { countsAsUnread }) {
    const li = this.item(m.conversation_id);
    if (!li) {
      this.refresh();  // a conversation this page has not seen yet
      return;
    }
    const a = li.querySelector('a');
    if (m.id <= (Number(a.dataset.lastId) || 0)) return;  // already shown (a resume repeats some)
    a.dataset.lastId = String(m.id);
    const when = new Date(m.created_at);
    const time = li.querySelector('.chat-time');
    if (time) time.replaceChildren(h('time', { datetime: when.toISOString() }, hhmm(when)));
    const line = li.querySelector('.chat-preview');
    if (line) {
      line.classList.remove('muted');
      const who = a.dataset.kind === 'group' && m.kind === 'text' ? `${m.sender_name}: ` : '';
      line.textContent = who + preview(m.body);
    }
    if (countsAsUnread) this.setUnread(li, (Number(a.dataset.unread) || 0) + 1);
    if (this.ul.firstElementChild !== li) this.ul.prepend(li);
    this.updateTotals();
  }

  setUnread(li, count) {
    const a = li.querySelector('a');
    a.dataset.unread = String(count);
    li.classList.toggle('unread', count > 0);
    let badge = a.querySelector('.badge');
    if (count > 0) {
      if (!badge) {
        badge = h('span', { class: 'badge' });
        a.append(badge);
      }
      badge.textContent = String(count);
      badge.setAttribute('aria-label', `${count} unread`);
    } else if (badge) badge.remove();
  }

  /** I read the conversation (here, in another tab, or on the no-JS page). */
  markRead(conversationId) {
    const li = this.item(conversationId);
    if (li && (Number(li.querySelector('a').dataset.unread) || 0) > 0) {
      this.setUnread(li, 0);
      this.updateTotals();
    }
  }

  onReceipt(f) {
    if (f.user_id !== this.me) return;
    const li = this.item(f.conversation_id);
    if (li && f.read_id >= (Number(li.querySelector('a').dataset.lastId) || 0)) this.markRead(f.conversation_id);
  }

  onConversation(f) {
    const id = f.conversation && f.conversation.id;
    const li = id ? this.item(id) : null;
    const ids = f.user_ids || [];
    if (f.event === 'member_removed' && ids.includes(this.me)) {
      if (li) li.remove();
      this.updateTotals();
      return;
    }
    if (f.event === 'renamed' && li) {
      const a = li.querySelector('a');
      a.dataset.title = f.conversation.title;
      const title = li.querySelector('.chat-title');
      const text = title.querySelector('bdi');
      if (text) text.textContent = f.conversation.title;
      else {
        for (const node of [...title.childNodes]) if (node.nodeType === Node.TEXT_NODE) node.remove();
        title.append(h('bdi', { dir: 'auto' }, f.conversation.title));
      }
      return;
    }
    if (!li && (f.event === 'created' || f.event === 'member_added')) this.refresh();
  }

  /** [conversation id, last message id] of every conversation with unread messages. */
  unreadConversations() {
    const out = [];
    for (const li of this.ul.querySelectorAll('li.chat-item')) {
      const a = li.querySelector('a');
      if ((Number(a.dataset.unread) || 0) > 0) out.push([Number(li.dataset.conversationId), Number(a.dataset.lastId) || 0]);
    }
    return out;
  }

  get total() {
    let sum = 0;
    for (const a of this.ul.querySelectorAll('li.chat-item > a')) sum += Number(a.dataset.unread) || 0;
    return sum;
  }

  updateTotals() {
    const total = this.total;
    for (const heading of document.querySelectorAll('.chats-heading')) {
      let badge = /** @type {HTMLElement | null} */ (heading.querySelector('.badge'));
      if (total > 0) {
        if (!badge) {
          badge = h('span', { class: 'badge' });
          heading.append(' ', badge);
        }
        badge.textContent = String(total);
        badge.setAttribute('aria-label', `${total} unread messages`);
      } else if (badge) badge.remove();
    }
    setTitleCount(total);
  }

  /** Fetch the list from the server (a conversation was created or I was added to one). */
  refresh() {
    if (this.refreshing) return this.refreshing;
    this.refreshing = (async () => {
      try {
        const response = await fetch('/chats?auto=1', { credentials: 'same-origin', cache: 'no-store' });
        if (!response.ok || response.redirected) return;
        const doc = new DOMParser().parseFromString(await response.text(), 'text/html');
        const fresh = doc.getElementById('chat-list');
        if (!fresh) return;
        // Parsed by DOMParser from our own escaped page: no script runs, no user text is HTML.
        this.ul.replaceChildren(...[...fresh.children].map((node) => document.adoptNode(node)));
        document.getElementById('chat-list-empty')?.remove();
        if (this.currentId) {
          const current = this.item(this.currentId);
          if (current) {
            current.classList.add('current');
            current.querySelector('a').setAttribute('aria-current', 'page');
            if (document.visibilityState === 'visible') this.setUnread(current, 0);
          }
        }
        this.updateTotals();
      } catch {
        // offline: the next event or page load brings it
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }
}
