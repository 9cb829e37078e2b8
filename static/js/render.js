// @ts-check
// Drawing messages. The page carries <template>s rendered by the same Jinja macro as every
// message on it (templates/chats/_message.html); a message from the socket or the history
// is a clone of one, its slots filled with textContent (never innerHTML). Ticks follow
// ticks.js and day separators days.js, the rules the server's markup follows too.

import { dayBreaks } from './days.js';
import { bodyNodes, dayLabel, h, hhmm, preview } from './dom.js';
import { tickState } from './ticks.js';

/**
 * A message as the socket and messages.json send it (docs/protocol.md).
 * @typedef {{id: number, conversation_id: number, sender_id: number | null, sender_name?: string,
 *   kind: string, body: string, created_at: string, client_msg_id?: string | null,
 *   reply_to?: {id: number, sender_name?: string, preview?: string} | null}} Message
 */

/**
 * A message typed here and not yet stored (the outbox's entry).
 * @typedef {{client_msg_id: string, conversation_id: number, body: string, reply_to: number | null,
 *   reply: {id: number, sender_name: string, preview: string} | null, created_at: string}} Pending
 */

/**
 * What drawing needs to know of the conversation.
 * @typedef {{id: number, me: number, myName: string, kind: string, others: import('./ticks.js').Member[]}} Context
 */

/**
 * A clone of the page's <template id=``id``>'s element.
 * @param {string} id
 * @returns {HTMLElement}
 */
function fromTemplate(id) {
  const template = /** @type {HTMLTemplateElement | null} */ (document.getElementById(id));
  const first = template && template.content.firstElementChild;
  if (!first) throw new Error(`the page has no <template id="${id}">`);
  return /** @type {HTMLElement} */ (first.cloneNode(true));
}

/**
 * The element of ``selector`` inside ``root`` (the template has it).
 * @param {Element} root
 * @param {string} selector
 * @returns {HTMLElement}
 */
function slot(root, selector) {
  const found = root.querySelector(selector);
  if (!found) throw new Error(`no ${selector} in the message template`);
  return /** @type {HTMLElement} */ (found);
}

/**
 * @param {Element} time
 * @param {Date} when
 */
function setTime(time, when) {
  time.setAttribute('datetime', when.toISOString());
  time.textContent = hhmm(when);
}

/**
 * The ticks element of a state: in groups a link to the message's info page (who read it,
 * when), as the server draws it.
 * @param {import('./ticks.js').TickState | null} state
 * @param {string | null} [infoHref]
 * @returns {HTMLElement | null}
 */
export function ticksElement(state, infoHref = null) {
  if (!state) return null;
  const attrs = { class: `ticks ${state.cls}`.trim(), 'aria-label': state.label, title: state.title || null };
  if (state.info && infoHref) return h('a', { ...attrs, href: infoHref }, state.text);
  return h('span', attrs, state.text);
}

/**
 * @param {number} conversationId
 * @param {number} messageId
 */
export function infoHref(conversationId, messageId) {
  return `/chats/${conversationId}/messages/${messageId}/info`;
}

/**
 * The ticks of my message ``id`` in this conversation.
 * @param {Context} c
 * @param {number} id
 */
export function ticksFor(c, id) {
  return ticksElement(tickState(id, c.others, c.kind), id ? infoHref(c.id, id) : null);
}

/**
 * Fill the quote slot, or drop it.
 * @param {HTMLElement} li
 * @param {{id: number, sender_name?: string, preview?: string} | null | undefined} reply
 */
function fillQuote(li, reply) {
  const quote = slot(li, '.quote');
  if (!reply) {
    quote.remove();
    return;
  }
  quote.setAttribute('href', `#m${reply.id}`);
  slot(quote, '.sender').textContent = reply.sender_name || '';
  // A quote from before I joined comes without its text (as the page shows it).
  slot(quote, '.quote-text').textContent = reply.sender_name || reply.preview ? preview(reply.preview || '', 120) : 'an earlier message';
}

/**
 * A stored message.
 * @param {Message} m
 * @param {Context} c
 * @returns {HTMLElement}
 */
export function renderMessage(m, c) {
  const when = new Date(m.created_at);
  if (m.kind === 'system') {
    const li = fromTemplate('system-message-template');
    li.id = `m${m.id}`;
    slot(li, 'span').textContent = m.body;
    setTime(slot(li, 'time'), when);
    return li;
  }
  const mine = m.sender_id === c.me;
  const li = fromTemplate('message-template');
  li.classList.add(mine ? 'mine' : 'theirs');
  li.id = `m${m.id}`;
  li.dataset.id = String(m.id);
  li.dataset.sender = m.sender_name || '';
  const sender = slot(li, ':scope > .sender');
  if (c.kind === 'group' && !mine) sender.textContent = m.sender_name || '';
  else sender.remove();
  fillQuote(li, m.reply_to);
  slot(li, '.body').append(bodyNodes(m.body));
  setTime(slot(li, '.meta time'), when);
  setTicks(li, mine ? ticksFor(c, m.id) : null);
  slot(li, '.reply-link').setAttribute('href', `/chats/${c.id}?reply_to=${m.id}`);
  return li;
}

/**
 * My message as typed, before the server has it: no id, no Reply.
 * @param {Pending} entry
 * @param {Context} c
 * @returns {HTMLElement}
 */
export function renderPending(entry, c) {
  const li = fromTemplate('message-template');
  li.classList.add('mine', 'pending');
  li.dataset.clientId = entry.client_msg_id;
  li.dataset.sender = c.myName;
  slot(li, ':scope > .sender').remove();
  fillQuote(li, entry.reply);
  slot(li, '.body').append(bodyNodes(entry.body));
  setTime(slot(li, '.meta time'), new Date(entry.created_at));
  setTicks(li, ticksFor(c, 0));
  slot(li, '.reply-link').remove();
  return li;
}

/**
 * My pending message came back from the server with its id.
 * @param {HTMLElement} li
 * @param {Message} m
 * @param {Context} c
 */
export function confirmPending(li, m, c) {
  li.id = `m${m.id}`;
  li.dataset.id = String(m.id);
  delete li.dataset.clientId;
  li.classList.remove('pending');
  setTime(slot(li, '.meta time'), new Date(m.created_at));
  setTicks(li, ticksFor(c, m.id));
  const meta = slot(li, '.meta');
  if (!meta.querySelector('.reply-link')) {
    meta.append(h('a', { class: 'reply-link', href: `/chats/${c.id}?reply_to=${m.id}`, 'aria-label': 'Reply to this message' }, 'Reply'));
  }
}

/**
 * Put ``fresh`` in place of the message's ticks (none: no ticks), changing nothing when they
 * read the same.
 * @param {Element} li
 * @param {HTMLElement | null} fresh
 */
export function setTicks(li, fresh) {
  const old = li.querySelector('.ticks');
  if (old && fresh) {
    if (old.textContent !== fresh.textContent || old.className !== fresh.className || old.tagName !== fresh.tagName) old.replaceWith(fresh);
  } else if (fresh) li.querySelector('.meta time')?.after(fresh);
  else if (old) old.remove();
}

/** @param {string} label */
export function daySeparator(label) {
  return h('li', { class: 'day' }, h('span', {}, label));
}

/**
 * Day separators in the browser's zone (the server drew them in its own): one before each
 * message whose day differs from the one above it (days.js), kept where they are right.
 * @param {Element} list the <ol> of messages
 */
export function regroupDays(list) {
  for (const day of list.querySelectorAll('li.day + li.day')) day.previousElementSibling?.remove();
  const rows = [...list.children].filter((li) => !li.classList.contains('day'));
  const days = rows.map((li) => {
    const time = li.matches('li.msg') ? li.querySelector('time[datetime]') : null;
    return time ? dayLabel(new Date(time.getAttribute('datetime') || '')) : null;
  });
  const breaks = dayBreaks(days);
  rows.forEach((li, index) => {
    const want = breaks[index];
    const above = li.previousElementSibling;
    const have = above && above.classList.contains('day') ? above : null;
    if (have && have.textContent === want) return;
    if (have) have.remove();
    if (want) li.before(daySeparator(want));
  });
  // A separator left with nothing after it.
  const last = list.lastElementChild;
  if (last && last.classList.contains('day')) last.remove();
}
