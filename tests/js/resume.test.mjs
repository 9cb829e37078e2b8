// Where the socket resumes after a drop (static/js/socket.js ResumePoint).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ResumePoint } from '../../static/js/socket.js';

test('resumes from the page\'s id when nothing came', () => {
  assert.equal(new ResumePoint('40').resumeFrom(), 40);
  assert.equal(new ResumePoint(undefined).resumeFrom(), 0);
});

test('ids seen in the last seconds before the drop are not trusted', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const point = new ResumePoint(10);
  point.seen(11);
  t.mock.timers.tick(5000);
  point.seen(13);  // 12 may still be on its way
  t.mock.timers.tick(1000);
  assert.equal(point.resumeFrom(), 11);  // 13 came 1 s before the drop
  t.mock.timers.tick(10000);
  point.seen(14);  // 13 is ten seconds old now: settled
  assert.equal(point.resumeFrom(), 13);
});

test('older and repeated ids do not move it back', () => {
  const point = new ResumePoint(50);
  point.seen(20);
  point.seen(Number.NaN);
  assert.equal(point.resumeFrom(Date.now() + 60000), 50);
});
