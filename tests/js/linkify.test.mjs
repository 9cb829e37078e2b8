// The script's linking rule (static/js/dom.js linkify) against tests/vectors/linkify.json,
// the examples the server's render_body passes too (tests/lib/test_text.py), and against the
// pattern it had before, which used look-behinds: Safari before 16.4 cannot parse those, and
// one syntax error there stops every script of the page.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';

import { LINK_TLDS, linkify, visibleControls } from '../../static/js/dom.js';

const root = new URL('../../', import.meta.url);
const vectors = JSON.parse(readFileSync(new URL('tests/vectors/linkify.json', root), 'utf8')).cases;

/** What the reader sees, as the vectors write it: text (a line break is \n) and links. */
function shown(text) {
  const out = [];
  const addText = (t) => {
    if (typeof out[out.length - 1] === 'string') out[out.length - 1] += t;
    else out.push(t);
  };
  text.split('\n').forEach((line, index) => {
    if (index) addText('\n');
    for (const piece of linkify(line)) {
      if (piece.url === undefined) addText(piece.text);
      else out.push({ a: visibleControls(piece.url), href: piece.href });
    }
  });
  return out;
}

test('every linkify vector reads the same as the server renders it', () => {
  assert.ok(vectors.length > 10);
  for (const c of vectors) assert.deepEqual(shown(c.text), c.shown, c.why);
});

test('no script under static/ uses a look-behind (a syntax error in Safari < 16.4)', () => {
  const dir = new URL('static/js/', root);
  const names = readdirSync(dir).filter((name) => name.endsWith('.js'));
  assert.ok(names.includes('dom.js'));
  for (const name of names) assert.doesNotMatch(readFileSync(new URL(name, dir), 'utf8'), /\(\?<[=!]/, name);
  assert.doesNotMatch(readFileSync(new URL('static/sw.js', root), 'utf8'), /\(\?<[=!]/);
});

// The pattern as it was (a port of app/lib/text.py's), look-behinds and all: node can run it.
const WORD = String.raw`\p{L}\p{N}_`;
const SPACE = String.raw`\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000`;
const BOUNDARY = String.raw`(?:(?<=[${WORD}])(?![${WORD}])|(?<![${WORD}])(?=[${WORD}]))`;
const PATH = String.raw`[^${SPACE}{}|\\^\x60<>"]*`;
const OLD_PATTERN = new RegExp(
  String.raw`\(*(?:${BOUNDARY}https?:\/\/[${WORD}.\-]+(?::[0-9]+)?(?:[/?#]${PATH})?`
  + String.raw`|${BOUNDARY}(?<![@./])(?:https?:\/{0,3}(?:(?:[${WORD}]+:)?[${WORD}]+@)?)?(?:[${WORD}\-]+\.)+(?:${LINK_TLDS.join('|')})`
  + String.raw`(?::[0-9]+)?(?!\.[${WORD}])${BOUNDARY}(?:[/?]${PATH})?)`,
  'giu',
);

function oldMatches(line) {
  return [...line.matchAll(OLD_PATTERN)].map((m) => [m.index, m[0]]);
}

/** A small deterministic generator (no Math.random: a failure must repeat). */
function* lines(count) {
  const parts = ['http://', 'https://', 'HTTP://', 'www.', 'nhs', '.uk', '.com', '.co', '.local', 'a', 'é', '_', '-', '(', ')',
    '.', ',', '@', '/', ':', '8080', '?q=1', '#x', ' ', '\u00a0', 'ftp://', 'user@', 'x.y', '\u202e', '\u{1D400}', 'مرحبا', '1', 'https:/'];
  let seed = 7;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed;
  };
  for (let n = 0; n < count; n += 1) {
    let line = '';
    const length = 1 + (next() % 9);
    for (let i = 0; i < length; i += 1) line += parts[next() % parts.length];
    yield line;
  }
}

test('the pattern without look-behinds finds what the old one found', async () => {
  const { urlMatches } = await import('../../static/js/dom.js');
  const samples = [...vectors.flatMap((c) => c.text.split('\n')), ...lines(20000)];
  let linked = 0;
  for (const line of samples) {
    if (oldMatches(line).length) linked += 1;
    assert.deepEqual(urlMatches(line).map((m) => [m.index, m.text]), oldMatches(line), JSON.stringify(line));
  }
  assert.ok(linked > 2000, `only ${linked} samples had a link`);
});
