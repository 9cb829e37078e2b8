// The ticks rule (static/js/ticks.js); the page without JavaScript draws the same
// (templates/chats/_message.html, tests/web/test_message_info.py).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { recipients, tickState } from '../../static/js/ticks.js';

const member = (id, read, delivered, from = 0) => ({ id, name: `U${id}`, read, delivered, from });

test('a message not stored yet is Sending; nobody to receive it: no ticks', () => {
  assert.equal(tickState(0).label, 'Sending');
  assert.equal(tickState(5, [], 'direct'), null);
});

test('direct: Sent, Delivered, Read', () => {
  assert.equal(tickState(5, [member(2, 0, 0)], 'direct').text, '\u2713 Sent');
  assert.equal(tickState(5, [member(2, 0, 5)], 'direct').text, '\u2713\u2713 Delivered');
  assert.deepEqual(tickState(5, [member(2, 5, 0)], 'direct'), { cls: 'read', text: '\u2713\u2713 Read', label: 'Read' });
});

test('group: read by some, delivered to all, read by all', () => {
  const some = tickState(5, [member(2, 5, 5), member(3, 0, 0)], 'group');
  assert.equal(some.text, '\u2713 Read by 1 of 2');
  assert.equal(some.label, 'Sent, read by 1 of 2');
  assert.equal(some.title, 'Read by U2: message info');
  assert.equal(tickState(5, [member(2, 5, 5), member(3, 0, 7)], 'group').text, '\u2713\u2713 Read by 1 of 2');
  assert.equal(tickState(5, [member(2, 9, 9), member(3, 5, 0)], 'group').text, '\u2713\u2713 Read by all');
  assert.equal(tickState(5, [member(2, 0, 0)], 'group').title, 'Read by nobody yet: message info');
});

test('a member added after the message does not count toward its ticks', () => {
  // Dave (4) joined after message 5: his watermarks start at 7, past it, but he never got it.
  const others = [member(2, 5, 5), member(3, 0, 0), member(4, 7, 7, 7)];
  assert.deepEqual(recipients(5, others).map((m) => m.id), [2, 3]);
  assert.equal(tickState(5, others, 'group').text, '\u2713 Read by 1 of 2');
  assert.equal(tickState(8, others, 'group').text, '\u2713 Read by 0 of 3');
  // Joined after it, in a chat where nobody else was there: nothing to tick.
  assert.equal(tickState(5, [member(4, 7, 7, 7)], 'group'), null);
  // history_from_id equal to the message: the message is not in that history either.
  assert.equal(tickState(7, [member(4, 7, 7, 7)], 'direct'), null);
});
