// The outbox (static/js/outbox.js): one message in flight, in order, the same id on a retry.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Outbox } from '../../static/js/outbox.js';

function outbox({ open = true } = {}) {
  const sent = [];
  const failed = [];
  const state = { open };
  const box = new Outbox({
    persist: false,
    transmit: (frame) => {
      if (!state.open) return false;
      sent.push(frame);
      return true;
    },
    onFailed: (entry, error) => failed.push([entry.client_msg_id, error.code]),
  });
  return { box, sent, failed, state };
}

const entry = (id, body = id) => ({ client_msg_id: id, conversation_id: 1, body, reply_to: null, reply: null, created_at: '' });

test('messages go one at a time, in the order typed, each after the previous ack', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const { box, sent } = outbox();
  box.add(entry('a'));
  box.add(entry('b'));
  box.add(entry('c'));
  assert.deepEqual(sent.map((f) => f.client_msg_id), ['a']);
  box.done('a');
  box.done('b');
  assert.deepEqual(sent.map((f) => f.client_msg_id), ['a', 'b', 'c']);
  assert.equal(box.size, 1);
});

test('offline: nothing goes; back online, the oldest first, the same id again after a lost connection', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const { box, sent, state } = outbox({ open: false });
  box.add(entry('a'));
  box.add(entry('b'));
  assert.equal(sent.length, 0);
  state.open = true;
  box.pump();
  assert.deepEqual(sent.map((f) => f.client_msg_id), ['a']);
  box.connectionLost();
  box.pump();
  assert.deepEqual(sent.map((f) => f.client_msg_id), ['a', 'a']);
  t.mock.timers.tick(15000);  // no ack: the same message again, never the next one
  assert.deepEqual(sent.map((f) => f.client_msg_id), ['a', 'a', 'a']);
});

test('rate limited: the same message later; refused for good: the next one goes', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const { box, sent, failed } = outbox();
  box.add(entry('a'));
  box.add(entry('b'));
  box.refused({ ref: 'a', code: 'rate_limited', retry_after: 2 });
  assert.equal(sent.length, 1);
  t.mock.timers.tick(2000);
  assert.deepEqual(sent.map((f) => f.client_msg_id), ['a', 'a']);
  box.refused({ ref: 'a', code: 'too_long' });
  assert.deepEqual(failed, [['a', 'too_long']]);
  assert.deepEqual(sent.map((f) => f.client_msg_id), ['a', 'a', 'b']);
});
