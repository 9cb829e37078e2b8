// @ts-check
// The message box of the open conversation: it sends over the socket with a local echo
// (through the outbox), Enter sends, the reply bar, the error line, and "typing" frames.

import { h, preview, uuid } from './dom.js';

/**
 * What the composer needs of the conversation around it.
 * @typedef {object} ComposeHost
 * @property {number} id
 * @property {string} myName
 * @property {string} title
 * @property {number} maxChars
 * @property {{send: (frame: object) => boolean, isOpen: boolean}} socket
 * @property {{add: (entry: import('./render.js').Pending) => void}} outbox
 * @property {(entry: import('./render.js').Pending) => void} sent   draw it and scroll to it
 * @property {(li: Element | null) => void} keepInView
 */

/** @typedef {{id: number, sender_name: string, preview: string}} Reply */

export class Composer {
  /**
   * @param {HTMLFormElement} form
   * @param {HTMLTextAreaElement} textarea
   * @param {ComposeHost} host
   */
  constructor(form, textarea, host) {
    this.form = form;
    this.textarea = textarea;
    this.host = host;
    /** @type {Reply | null} */
    this.reply = null;
    this.typingOn = false;
    this.typingSentAt = 0;
  }

  /** Take over the form: it was made to post the page, now it sends over the socket. */
  start() {
    const adopted = /** @type {HTMLInputElement | null} */ (this.form.querySelector('.replying input[name="reply_to"]'));
    if (adopted) {
      const bar = adopted.closest('.replying');
      const li = document.getElementById(`m${adopted.value}`);
      this.reply = {
        id: Number(adopted.value),
        sender_name: bar?.querySelector('strong')?.textContent || '',
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
    const max = this.host.maxChars;
    if (text.length > max) {
      this.showError(`A message can be at most ${max} characters (${text.length} typed).`);
      return;
    }
    this.showError('');
    this.stopTyping();
    const entry = {
      client_msg_id: uuid(),
      conversation_id: this.host.id,
      body: text,
      reply_to: this.reply ? this.reply.id : null,
      reply: this.reply,
      created_at: new Date().toISOString(),
    };
    this.textarea.value = '';
    this.reply = null;
    this.renderReplyBar();
    this.host.sent(entry);
    this.host.outbox.add(entry);
  }

  /** @param {string} text the error, or '' for none */
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

  /**
   * The server refused a queued message for good: say so, and give the text back.
   * @param {import('./render.js').Pending} entry
   * @param {{message?: string}} error
   */
  failed(entry, error) {
    this.showError(`Not sent: ${error.message || 'the server refused this message.'}`);
    if (!this.textarea.value.trim()) this.textarea.value = entry.body;
  }

  typed() {
    const socket = this.host.socket;
    if (!socket.isOpen) return;
    const has = this.textarea.value.trim() !== '';
    if (has && Date.now() - this.typingSentAt > 3000) {
      if (socket.send({ type: 'typing', conversation_id: this.host.id, typing: true })) {
        this.typingOn = true;
        this.typingSentAt = Date.now();
      }
    } else if (!has) this.stopTyping();
  }

  stopTyping() {
    if (!this.typingOn) return;
    this.typingOn = false;
    this.typingSentAt = 0;
    this.host.socket.send({ type: 'typing', conversation_id: this.host.id, typing: false });
  }

  /**
   * Answer the message ``li`` (its Reply link).
   * @param {HTMLElement} li
   */
  startReply(li) {
    const mine = li.classList.contains('mine');
    this.reply = {
      id: Number(li.dataset.id),
      sender_name: li.dataset.sender || (mine ? this.host.myName : this.host.title),
      preview: preview(li.querySelector('.body')?.textContent || '', 120),
    };
    this.renderReplyBar();
    // The bar takes its height from the message list: keep the message being answered in view.
    this.host.keepInView(li);
    this.textarea.focus({ preventScroll: true });
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
}
