import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/clock.js';
import { createLogger, createLogThrottle } from '../../src/log.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level: 'trace', destination: { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) } });
  return { lines, logger };
}

test('a flood of one warning logs the first at once and one summary per interval', () => {
  const { lines, logger } = capture();
  const clock = new ManualClock();
  const t = createLogThrottle({ logger, clock, intervalMs: 1000 });
  for (let i = 0; i < 10_000; i++) t.warn('cap', { cap: 256, n: i }, 'connection cap reached');
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.msg, 'connection cap reached');
  assert.equal(lines[0]!.n, 0);
  assert.equal(t.pending('cap'), 9_999);
  clock.advance(1000);
  assert.equal(lines.length, 2);
  assert.equal(lines[1]!.repeated, 9_999);
  assert.equal(lines[1]!.n, 9_999, 'the summary carries the last occurrence\'s fields');
  // Still hot: the next one is counted, not logged.
  t.warn('cap', { cap: 256 }, 'connection cap reached');
  assert.equal(lines.length, 2);
  clock.advance(1000);
  assert.equal(lines.length, 3);
  assert.equal(lines[2]!.repeated, 1);
  // A whole quiet interval: forgotten, the timer stops, the next is logged at once.
  clock.advance(1000);
  assert.equal(lines.length, 3);
  assert.equal(clock.pending, 0);
  t.warn('cap', {}, 'connection cap reached');
  assert.equal(lines.length, 4);
  assert.equal(lines[3]!.repeated, undefined);
  t.close();
  assert.equal(clock.pending, 0);
});

test('keys are throttled separately, bounded by maxKeys, and close() flushes what is pending', () => {
  const { lines, logger } = capture();
  const clock = new ManualClock();
  const t = createLogThrottle({ logger, clock, intervalMs: 1000, maxKeys: 2 });
  t.warn('a', {}, 'A');
  t.warn('b', {}, 'B');
  t.warn('a', {}, 'A');
  for (let i = 0; i < 5; i++) t.warn(`k${i}`, { i }, `K${i}`);
  // a and b logged once each; the first key over the cap logged once, as itself; the rest counted.
  assert.deepEqual(lines.map((l) => l.msg), ['A', 'B', 'K0']);
  assert.equal(t.pending('(other)'), 4);
  t.close();
  t.close();
  assert.deepEqual(lines.slice(3).map((l) => l.repeated), [1, 4]);
  assert.equal(clock.pending, 0);
  t.warn('a', {}, 'A');
  assert.equal(lines.length, 5, 'nothing is logged after close');
});
