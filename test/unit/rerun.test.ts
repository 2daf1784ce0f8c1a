/** KeyedRerun (src/rerun.ts): one job per key at a time, requests while it runs coalesced into one more run, bounded. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedRerun } from '../../src/rerun.js';

const tick = () => new Promise((r) => setImmediate(r));

test('requests while a run is in progress make exactly one more run; other keys run on their own', async () => {
  const r = new KeyedRerun<string>({ maxRuns: 10, onError: () => assert.fail('no error expected') });
  const runs: string[] = [];
  let release!: () => void;
  const job = (key: string) => async () => {
    runs.push(key);
    if (runs.length === 1) await new Promise<void>((res) => (release = res));
    return false;
  };
  r.request('a', job('a'));
  r.request('a', job('a'));
  r.request('a', job('a'));
  r.request('b', job('b'));
  await tick();
  assert.deepEqual(runs, ['a', 'b']);
  release();
  for (let i = 0; i < 5; i++) await tick();
  assert.deepEqual(runs, ['a', 'b', 'a'], 'two asks during the run: one more run');
});

test('a run that says it left work runs again, at most maxRuns in a row; stop() ends it; an error is reported once', async () => {
  const errors: unknown[] = [];
  const r = new KeyedRerun<number>({ maxRuns: 5, onError: (_k, e) => errors.push(e) });
  let n = 0;
  r.request(1, async () => {
    n++;
    return true;
  });
  for (let i = 0; i < 20; i++) await tick();
  assert.equal(n, 5);
  let m = 0;
  r.request(2, async () => {
    m++;
    return true;
  }, () => m >= 2);
  for (let i = 0; i < 20; i++) await tick();
  assert.equal(m, 2);
  r.request(3, async () => {
    throw new Error('boom');
  });
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(errors.length, 1);
  // After an error the key is free again.
  let k = 0;
  r.request(3, async () => {
    k++;
    return false;
  });
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(k, 1);
});
