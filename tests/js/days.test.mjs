// Day separators: static/js/days.js (where they go) and dom.js's labels.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { dayBreaks } from '../../static/js/days.js';
import { dayLabel } from '../../static/js/dom.js';

test('a separator before the first message of each day', () => {
  assert.deepEqual(dayBreaks(['Mon', 'Mon', 'Tue', 'Tue', 'Wed']), ['Mon', null, 'Tue', null, 'Wed']);
  assert.deepEqual(dayBreaks([]), []);
});

test('the "New messages" divider keeps with the message after it', () => {
  // rows: message, divider, message of a new day: the separator goes above the divider.
  assert.deepEqual(dayBreaks(['Mon', null, 'Tue']), ['Mon', 'Tue', null]);
  assert.deepEqual(dayBreaks([null, 'Mon', 'Mon']), ['Mon', null, null]);
  assert.deepEqual(dayBreaks(['Mon', null, 'Mon']), ['Mon', null, null]);
  assert.deepEqual(dayBreaks(['Mon', null]), ['Mon', null]);
});

test('a day back is Yesterday, today is Today, older days have a date', () => {
  const now = new Date();
  assert.equal(dayLabel(now), 'Today');
  assert.equal(dayLabel(new Date(now.getTime() - 86400000)), 'Yesterday');
  assert.match(dayLabel(new Date(now.getTime() - 30 * 86400000)), /^[A-Z][a-z]+day \d{1,2} [A-Z][a-z]+ \d{4}$/);
});
