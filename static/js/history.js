// @ts-check
// The scrolling message list: where it starts, staying at its end, and older history
// loaded above when the reader scrolls up (the page's "Older messages" link does the same
// without JavaScript).

export class History {
  /**
   * @param {object} o
   * @param {number} o.id the conversation
   * @param {HTMLElement} o.section
   * @param {HTMLElement} o.list
   * @param {HTMLElement | null} o.scroller
   * @param {boolean} o.historical a ?before= page: nothing moves
   * @param {() => {id: number} | null} o.reply the message being answered
   * @param {(messages: import('./render.js').Message[]) => void} o.insertOlder put them above the others
   */
  constructor({ id, section, list, scroller, historical, reply, insertOlder }) {
    this.id = id;
    this.section = section;
    this.list = list;
    this.scroller = scroller;
    this.historical = historical;
    this.reply = reply;
    this.insertOlder = insertOlder;
    this.atEnd = true;
    this.loadingOlder = false;
    /** @type {HTMLAnchorElement | null} */
    this.olderLink = null;
    /** @type {IntersectionObserver | null} */
    this.observer = null;
  }

  start() {
    this.setupOlder();
    this.scrollInitially();
    this.keepEndInView();
  }

  isNearBottom() {
    const s = this.scroller;
    return !s || s.scrollHeight - s.scrollTop - s.clientHeight < 150;
  }

  scrollToBottom() {
    if (this.scroller) this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  /**
   * Scroll the list so that ``li`` is wholly visible (a little more when it is taller).
   * @param {Element | null} li
   */
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
      const reply = this.reply();
      if (this.atEnd) this.scrollToBottom();
      else if (reply) this.keepInView(document.getElementById(`m${reply.id}`));
    }).observe(s);
  }

  scrollInitially() {
    if (!this.scroller || this.historical) return;
    if (location.hash === '#compose') return;  // a no-JS "Reply" link: the form is the point
    const divider = /** @type {HTMLElement | null} */ (this.list.querySelector('.new-divider'));
    if (divider) this.scroller.scrollTop = Math.max(0, divider.offsetTop - 24);
    else this.scrollToBottom();
  }

  setupOlder() {
    const links = /** @type {HTMLAnchorElement[]} */ ([...this.section.querySelectorAll('p.older a')]);
    const link = links.find((a) => a.href.includes('before='));
    if (!link || this.historical) return;
    this.olderLink = link;
    link.addEventListener('click', (event) => {
      event.preventDefault();
      this.loadOlder();
    });
    if ('IntersectionObserver' in window) {
      const observer = new IntersectionObserver((entries) => {
        if (entries.some((e) => e.isIntersecting)) this.loadOlder();
      }, { root: this.scroller, rootMargin: '300px 0px 0px 0px' });
      this.observer = observer;
      // Only once the first scroll to the bottom is done, or the top would load at once.
      requestAnimationFrame(() => observer.observe(link));
    }
  }

  async loadOlder() {
    const link = this.olderLink;
    if (this.loadingOlder || !link) return;
    const first = this.list.querySelector('li.msg[id^="m"]');
    if (!first) return;
    const before = Number(first.id.slice(1));
    this.loadingOlder = true;
    link.setAttribute('aria-busy', 'true');
    try {
      const response = await fetch(`/chats/${this.id}/messages.json?before=${before}`, {
        credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' },
      });
      if (response.redirected && new URL(response.url).pathname === '/login') {
        location.assign(response.url);
        return;
      }
      if (!response.ok) return;
      /** @type {{messages?: import('./render.js').Message[], has_older?: boolean}} */
      const data = await response.json();
      const messages = data.messages || [];
      this.prepend(messages);
      if (!data.has_older) {
        this.observer?.disconnect();
        link.closest('p.older')?.remove();
        this.olderLink = null;
      } else if (messages.length) {
        link.href = `/chats/${this.id}?before=${messages[0].id}`;
      }
    } catch {
      // offline: the link still works once the network is back
    } finally {
      this.loadingOlder = false;
      this.olderLink?.removeAttribute('aria-busy');
    }
  }

  /**
   * Older messages above the ones shown, the reader's place kept.
   * @param {import('./render.js').Message[]} messages
   */
  prepend(messages) {
    const fresh = messages.filter((m) => !document.getElementById(`m${m.id}`));
    if (!fresh.length) return;
    const s = this.scroller;
    const oldHeight = s ? s.scrollHeight : 0;
    const oldTop = s ? s.scrollTop : 0;
    this.insertOlder(fresh);
    if (s) s.scrollTop = oldTop + (s.scrollHeight - oldHeight);
  }
}
