// Small DOM and formatting helpers. User text only ever becomes text nodes (never innerHTML),
// and nothing here sets a style attribute (the CSP allows no inline style): classes and
// the hidden attribute do the work. An element holding user text gets dir="auto" (isolated:
// Arabic and Hebrew read right, and a bidi control inside cannot reorder the page around it).

/** Build an element: h('a', {class: 'x', href: '/y'}, 'text', otherNode). Strings become text nodes. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'style' || key.startsWith('on')) throw new Error(`h(): ${key} is not allowed`);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) el.append(child);
  }
  return el;
}

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+/gi;
const TRAILING = /[.,;:!?)\]}'"]+$/;

const FORMAT_CHARS = /\p{Cf}/gu;

/**
 * Text with every format character (Unicode Cf: bidi overrides and isolates, zero-width
 * characters) written out as "[U+202E]", as app/lib/text.py does for link text: a
 * right-to-left override would make "http://evil.example/\u202egnp.exe" read as "...exe.png".
 */
export function visibleControls(text) {
  return text.replace(FORMAT_CHARS, (ch) => `[U+${ch.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}]`);
}

/** A message body as nodes: text, <br> for line breaks, and safe links for http(s) URLs. */
export function bodyNodes(text) {
  const frag = document.createDocumentFragment();
  text.split('\n').forEach((line, index) => {
    if (index) frag.append(document.createElement('br'));
    let last = 0;
    for (const match of line.matchAll(URL_PATTERN)) {
      const url = match[0].replace(TRAILING, '');
      if (!url) continue;
      frag.append(line.slice(last, match.index));
      frag.append(h('a', { href: url, rel: 'noopener noreferrer nofollow', target: '_blank', dir: 'ltr' }, visibleControls(url)));
      last = match.index + url.length;
    }
    frag.append(line.slice(last));
  });
  return frag;
}

/** One line of at most ``max`` characters, as the server's ``preview`` filter makes it. */
export function preview(text, max = 80) {
  const flat = String(text).split(/\s+/).filter(Boolean).join(' ');
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}\u2026`;
}

function zone() {
  const tz = document.body.dataset.tz || 'UTC';
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: tz });
    return tz;
  } catch {
    return 'UTC';
  }
}

let formats = null;
function fmt() {
  if (!formats) {
    const timeZone = zone();
    formats = {
      time: new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone }),
      day: new Intl.DateTimeFormat('en-GB', { weekday: 'long', day: '2-digit', month: 'long', year: 'numeric', timeZone }),
      short: new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', timeZone }),
    };
  }
  return formats;
}

/** "14:05" in the server's display time zone (the pages show the same). */
export function hhmm(date) {
  return fmt().time.format(date);
}

/** "Monday 27 November 2026", as the server's ``day`` filter writes it. */
export function dayLabel(date) {
  const parts = Object.fromEntries(fmt().day.formatToParts(date).map((p) => [p.type, p.value]));
  return `${parts.weekday} ${parts.day} ${parts.month} ${parts.year}`;
}

/** "today at 14:05", "yesterday at 09:10", "3 Nov at 18:00". */
export function lastSeenLabel(date) {
  const today = dayLabel(new Date());
  const yesterday = dayLabel(new Date(Date.now() - 86400000));
  const day = dayLabel(date);
  const when = day === today ? 'today' : day === yesterday ? 'yesterday' : fmt().short.format(date);
  return `last seen ${when} at ${hhmm(date)}`;
}

/** A fresh client_msg_id (a UUID v4). */
export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Say something to screen readers through the page's polite live region. */
export function announce(text) {
  const region = document.getElementById('announcer');
  if (!region) return;
  region.textContent = '';
  // A new text node in a separate task is announced even when the words repeat.
  setTimeout(() => { region.textContent = text; }, 50);
}

/** The unread count shown in the tab title: "(3) Chats — MedChat". */
export function setTitleCount(count) {
  const base = document.title.replace(/^\(\d+\)\s+/, '');
  document.title = count > 0 ? `(${count}) ${base}` : base;
}
