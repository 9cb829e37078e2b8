// @ts-check
// Small DOM and formatting helpers. User text only ever becomes text nodes (never innerHTML),
// and nothing here sets a style attribute (the CSP allows no inline style): classes and
// the hidden attribute do the work. An element holding user text gets dir="auto" (isolated:
// Arabic and Hebrew read right, and a bidi control inside cannot reorder the page around it).

/**
 * Build an element: h('a', {class: 'x', href: '/y'}, 'text', otherNode). Strings become text nodes.
 * @param {string} tag
 * @param {Record<string, any>} [props]
 * @param {...(Node | string | null | undefined | false | (Node | string | null | undefined | false)[])} children
 * @returns {HTMLElement}
 */
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

// Links: the server's rule (app/lib/text.py: render_body, bleach's linkify with MedChat's URL
// pattern), ported so a message looks the same live and after a reload; one file of examples,
// tests/vectors/linkify.json, is run against both. Any http(s) URL with a scheme, whatever its
// host; a bare name (www.nhs.uk, nhs.uk/conditions) under a known top-level domain (bleach's list
// plus the intranet ones); never an e-mail address nor the host of another scheme (ftp://). A URL ends at white space and at { } | \ ^ `
// < > "; then bleach's trailing ".", "," and an unbalanced ")" are left out of it.
// Python's \w, \s and \b are Unicode-aware and JavaScript's are not: they are spelled out.

/** The top-level domains a bare name may end in: app/lib/text.py LINK_TLDS, in its order. */
export const LINK_TLDS = (
  'ac ad ae aero af ag ai al am an ao aq ar arpa as asia at au aw ax az ba bb bd be bf bg bh bi ' +
  'biz bj bm bn bo br bs bt bv bw by bz ca cat cc cd cf cg ch ci ck cl cm cn co com coop cr cu cv ' +
  'cx cy cz de dj dk dm do dz ec edu ee eg er es et eu fi fj fk fm fo fr ga gb gd ge gf gg gh gi ' +
  'gl gm gn gov gp gq gr gs gt gu gw gy hk hm hn hr ht hu id ie il im in info int internal ' +
  'intranet io iq ir is it je jm jo jobs jp ke kg kh ki km kn kp kr kw ky kz la lan lb lc li lk ' +
  'local lr ls lt lu lv ly ma mc md me mg mh mil mk ml mm mn mo mobi mp mq mr ms mt mu museum mv ' +
  'mw mx my mz na name nc ne net nf ng ni nl no np nr nu nz om org pa pe pf pg ph pk pl pm pn post ' +
  'pr pro ps pt pw py qa re ro rs ru rw sa sb sc sd se sg sh si sj sk sl sm sn so sr ss st su sv ' +
  'sx sy sz tc td tel tf tg th tj tk tl tm tn to tp tr travel tt tv tw tz ua ug uk us uy uz va vc ' +
  've vg vi vn vu wf ws xn xxx ye yt yu za zm zw '
).trim().split(' ');

const WORD = String.raw`\p{L}\p{N}_`;
const SPACE = String.raw`\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000`;
const PATH = String.raw`[^${SPACE}{}|\\^\x60<>"]*`;
// The server's pattern is "\(*" then one of two URL forms, each after a word boundary (\b), the
// bare one also not after "@", "." or "/". Those are look-behinds, which Safari before 16.4
// cannot even parse (one syntax error there stops every module of the page), so the two
// forms are sticky patterns tried by urlAt() at each place where the look-behinds would hold.
// After a host or port (a word character) \b is the same as "no word character next".
const WITH_SCHEME = new RegExp(String.raw`https?:\/\/[${WORD}.\-]+(?::[0-9]+)?(?:[/?#]${PATH})?`, 'iuy');
const BARE = new RegExp(
  String.raw`(?:https?:\/{0,3}(?:(?:[${WORD}]+:)?[${WORD}]+@)?)?(?:[${WORD}\-]+\.)+(?:${LINK_TLDS.join('|')})`
  + String.raw`(?::[0-9]+)?(?!\.[${WORD}])(?![${WORD}])(?:[/?]${PATH})?`,
  'iuy',
);
const WORD_FIRST = new RegExp(String.raw`[${WORD}]`, 'uy');
const WORD_LAST = new RegExp(String.raw`[${WORD}]$`, 'u');
const HAS_SCHEME = new RegExp(String.raw`^[${WORD}\-]+:\/{0,3}`, 'iu');

/** The length of the URL form that starts at ``at`` (after any "("), or 0. */
function urlAt(line, at) {
  // The character before ``at`` as a code point: two UTF-16 units when it is astral.
  const before = line.slice(Math.max(0, at - 2), at);
  const wordBefore = WORD_LAST.test(before);
  WORD_FIRST.lastIndex = at;
  if (wordBefore === WORD_FIRST.test(line)) return 0;  // not a word boundary
  WITH_SCHEME.lastIndex = at;
  const full = WITH_SCHEME.exec(line);
  if (full) return full[0].length;
  if (before && '@./'.includes(before.slice(-1))) return 0;
  BARE.lastIndex = at;
  const bare = BARE.exec(line);
  return bare ? bare[0].length : 0;
}

/** The URL-like matches of a line, as the server's pattern finds them: ``{index, text}``
 * (opening parentheses included), left to right, never overlapping. */
export function urlMatches(line) {
  const found = [];
  for (let start = 0; start < line.length; start += 1) {
    if (/[\udc00-\udfff]/.test(line[start]) && /[\ud800-\udbff]/.test(line[start - 1] || '')) continue;  // inside a code point
    let at = start;
    while (line[at] === '(') at += 1;
    const length = at < line.length ? urlAt(line, at) : 0;
    if (length) {
      found.push({ index: start, text: line.slice(start, at + length) });
      start = at + length - 1;
    } else start = at;  // every start inside the run of "(" ends at the same place
  }
  return found;
}

/** bleach's strip_non_url_bits: opening "(" (with a closing one), an unbalanced ")", "." and ",". */
function trimUrl(match) {
  let url = match;
  let prefix = '';
  let suffix = '';
  while (url) {
    if (url.startsWith('(')) {
      prefix += '(';
      url = url.slice(1);
      if (url.endsWith(')')) {
        suffix = `)${suffix}`;
        url = url.slice(0, -1);
      }
    } else if ((url.endsWith(')') && !url.includes('(')) || url.endsWith(',') || url.endsWith('.')) {
      suffix = url.slice(-1) + suffix;
      url = url.slice(0, -1);
    } else break;
  }
  return { prefix, url, suffix };
}

/**
 * One line of text as pieces: ``{text}`` and ``{url, href}`` (``href`` gets "http://" when the
 * URL names no scheme), by the server's rule.
 */
export function linkify(line) {
  /** @type {({text: string, url?: undefined, href?: undefined} | {url: string, href: string, text?: undefined})[]} */
  const pieces = [];
  let plain = '';
  let last = 0;
  for (const match of urlMatches(line)) {
    const { prefix, url, suffix } = trimUrl(match.text);
    plain += line.slice(last, match.index) + prefix;
    if (url) {
      if (plain) pieces.push({ text: plain });
      pieces.push({ url, href: HAS_SCHEME.test(url) ? url : `http://${url}` });
      plain = '';
    }
    plain += suffix;
    last = match.index + match.text.length;
  }
  plain += line.slice(last);
  if (plain) pieces.push({ text: plain });
  return pieces;
}

const FORMAT_CHARS = /\p{Cf}/gu;

/**
 * Text with every format character (Unicode Cf: bidi overrides and isolates, zero-width
 * characters) written out as "[U+202E]", as app/lib/text.py does for link text: a
 * right-to-left override would make "http://evil.example/\u202egnp.exe" read as "...exe.png".
 */
export function visibleControls(text) {
  return text.replace(FORMAT_CHARS, (ch) => `[U+${ch.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}]`);
}

/** A message body as nodes: text, <br> for line breaks, and links as the server draws them
 * (``<a href rel target dir>``, format characters in the link text shown as "[U+202E]"). */
export function bodyNodes(text) {
  const frag = document.createDocumentFragment();
  text.split('\n').forEach((line, index) => {
    if (index) frag.append(document.createElement('br'));
    for (const piece of linkify(line)) {
      if (piece.url === undefined) frag.append(piece.text);
      else frag.append(h('a', { href: piece.href, rel: 'noopener noreferrer nofollow', target: '_blank', dir: 'ltr' }, visibleControls(piece.url)));
    }
  });
  return frag;
}

/** One line of at most ``max`` characters, as the server's ``preview`` filter makes it. */
export function preview(text, max = 80) {
  const flat = String(text).split(/\s+/).filter(Boolean).join(' ');
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}\u2026`;
}

/** The browser's own time zone: with JavaScript, times read in the reader's zone (a page
 * without JavaScript shows the server's zone, DISPLAY_TIMEZONE). */
function zone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
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
      ymd: new Intl.DateTimeFormat('en-CA', { year: 'numeric', month: '2-digit', day: '2-digit', timeZone }),
      weekday: new Intl.DateTimeFormat('en-GB', { weekday: 'long', timeZone }),
      long: new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'long', year: 'numeric', timeZone }),
      short: new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', timeZone }),
      shortYear: new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', year: 'numeric', timeZone }),
    };
  }
  return formats;
}

/** "14:05" in the browser's zone. */
export function hhmm(date) {
  return fmt().time.format(date);
}

/** Whole days between ``date``'s day and today's, in the browser's zone. */
function daysAgo(date, now = new Date()) {
  const day = (d) => Date.parse(`${fmt().ymd.format(d)}T00:00:00Z`);
  return Math.round((day(now) - day(date)) / 86400000);
}

/** The day separator: "Today", "Yesterday", "Monday", "Monday 3 November 2026" (the
 * server's ``day`` filter writes the same, in its own zone). */
export function dayLabel(date) {
  const days = daysAgo(date);
  if (days <= 0) return 'Today';
  if (days === 1) return 'Yesterday';
  if (days < 7) return fmt().weekday.format(date);
  return `${fmt().weekday.format(date)} ${fmt().long.format(date)}`;
}

/** "07:02", "Yesterday 18:10", "Monday 09:15", "3 Nov 09:15" (the server's ``when``);
 * without the time for older days when ``withTime`` is false (the chat list). */
export function whenLabel(date, withTime = true) {
  const days = daysAgo(date);
  if (days <= 0) return hhmm(date);
  let day;
  if (days === 1) day = 'Yesterday';
  else if (days < 7) day = fmt().weekday.format(date);
  else if (fmt().ymd.format(date).slice(0, 4) === fmt().ymd.format(new Date()).slice(0, 4)) day = fmt().short.format(date);
  else day = fmt().shortYear.format(date);
  return withTime ? `${day} ${hhmm(date)}` : day;
}

/** Rewrite the server's times in the browser's zone: ``<time datetime>`` elements, in the
 * format their ``data-fmt`` names ("when", "list"; plain "14:05" otherwise). */
export function localiseTimes(root) {
  for (const el of root.querySelectorAll('time[datetime]')) {
    const date = new Date(el.getAttribute('datetime'));
    if (Number.isNaN(date.getTime())) continue;
    const kind = el.dataset.fmt;
    el.textContent = kind === 'when' ? whenLabel(date) : kind === 'list' ? whenLabel(date, false) : hhmm(date);
  }
}

/** "today at 14:05", "yesterday at 09:10", "3 Nov at 18:00". */
export function lastSeenLabel(date) {
  const days = daysAgo(date);
  const when = days <= 0 ? 'today' : days === 1 ? 'yesterday' : fmt().short.format(date);
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
