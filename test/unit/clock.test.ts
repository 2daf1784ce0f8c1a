import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/clock.js';

test('ManualClock fires due timers in time order, including ones scheduled while advancing', () => {
  const clock = new ManualClock(1000);
  const fired: string[] = [];
  clock.setTimeout(() => fired.push('b@300'), 300);
  clock.setTimeout(() => {
    fired.push('a@100');
    clock.setTimeout(() => fired.push('c@150'), 50);
  }, 100);
  const never = clock.setTimeout(() => fired.push('never'), 200);
  clock.clearTimeout(never);
  clock.advance(250);
  assert.deepEqual(fired, ['a@100', 'c@150']);
  assert.equal(clock.now(), 1250);
  clock.advance(50);
  assert.deepEqual(fired, ['a@100', 'c@150', 'b@300']);
  assert.equal(clock.pending, 0);
});
