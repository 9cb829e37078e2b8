// The page's side of the change stream (static/js/socket.js followStream and ResumePoint):
// a sync page's changes go through the same handler as live frames, and positions move the
// point the socket resumes from.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { followStream, ResumePoint } from '../../static/js/socket.js';

const message = (position, id) => ({ type: 'message', position, message: { id, conversation_id: 7, sender_id: 2, body: `m${id}` } });
const receipt = (position) => ({ type: 'receipt', position, conversation_id: 7, user_id: 2, read_id: 40, delivered_id: 40 });
const renamed = (position) => ({ type: 'conversation', position, event: 'renamed', conversation: { id: 7, kind: 'group', title: 'Ward 9 (east)' } });
const removed = (position) => ({ type: 'conversation', position, event: 'member_removed', conversation: { id: 7, kind: 'group', title: 'Ward 9' }, user_ids: [3] });

function follow(initial = 0) {
  const handled = [];
  const resume = new ResumePoint(initial);
  const onFrame = followStream(resume, (frame) => handled.push(frame));
  return { handled, resume, onFrame };
}

test('a sync page\'s changes reach the same handler as live frames, each once, oldest first', () => {
  const { handled, onFrame } = follow(10);
  const live = message(11, 40);
  onFrame(live);
  const changes = [receipt(12), renamed(13), message(14, 41), removed(15)];
  onFrame({ type: 'sync', changes, done: true, position: 15 });
  // The very objects, in order, as a live frame would be: the handler cannot tell them apart.
  assert.equal(handled.length, 5);
  assert.equal(handled[0], live);
  changes.forEach((change, i) => assert.equal(handled[i + 1], change));
  assert.ok(!handled.some((frame) => frame.type === 'sync'), 'the sync frame itself is not handled');
});

test('an empty or legacy-shaped sync page hands nothing on', () => {
  const { handled, onFrame } = follow(10);
  onFrame({ type: 'sync', changes: [], done: true, position: 10 });
  onFrame({ type: 'sync', done: true, position: 10, messages: [], last_id: 0 });
  assert.deepEqual(handled, []);
});

test('frames without a position (hello, typing, presence) pass through and leave the point alone', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const { handled, resume, onFrame } = follow(20);
  for (const frame of [{ type: 'hello', heartbeat: 20 }, { type: 'typing', conversation_id: 7, user_id: 2, typing: true }, { type: 'presence', user_id: 2, online: true }]) onFrame(frame);
  assert.deepEqual(handled.map((f) => f.type), ['hello', 'typing', 'presence']);
  t.mock.timers.tick(60_000);
  assert.equal(resume.resumeFrom(), 20);
});

test('the positions of a sync page\'s changes move the resume point, and the last page\'s position once done', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const { resume, onFrame } = follow(4);
  onFrame({ type: 'sync', changes: [message(5, 40), receipt(6)], done: false, position: 6 });
  t.mock.timers.tick(4000);
  assert.equal(resume.resumeFrom(), 6);
  // The last page covers up to 9 though its newest change is 7 (8 and 9 were not mine to see).
  onFrame({ type: 'sync', changes: [renamed(7)], done: true, position: 9 });
  t.mock.timers.tick(4000);
  assert.equal(resume.resumeFrom(), 9);
});

test('a page that is not done does not move the point past its changes', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const { resume, onFrame } = follow(4);
  onFrame({ type: 'sync', changes: [message(5, 40)], done: false, position: 8 });
  t.mock.timers.tick(4000);
  assert.equal(resume.resumeFrom(), 5);
});

test('positions seen just before the drop are not trusted, however late the reconnection', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const point = new ResumePoint(30);
  point.seen(31);
  t.mock.timers.tick(4000);
  point.seen(33);  // 32 (a concurrent change) may still be on its way
  t.mock.timers.tick(1000);
  const lostAt = Date.now();
  t.mock.timers.tick(120_000);  // offline for two minutes: 33 is old now, but it was not at the drop
  assert.equal(point.resumeFrom(lostAt), 31);
  assert.equal(point.resumeFrom(lostAt), 31, 'asking again gives the same point');
});

test('positions that arrive out of order settle at the highest once old enough', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const point = new ResumePoint(50);
  point.seen(53);
  point.seen(51);
  point.seen(52);
  point.seen(52);  // a resume repeats what the page has
  t.mock.timers.tick(3001);
  assert.equal(point.resumeFrom(), 53);
  point.seen(49);  // older than the settled point: ignored
  assert.equal(point.resumeFrom(Date.now() + 60_000), 53);
});
