import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupCommitter } from '../../src/pipeline/group-commit.js';

test('group commit: items of one turn share one write; each caller gets its own result after it', async () => {
  const writes: number[][] = [];
  const g = new GroupCommitter<number, string>((items) => {
    writes.push(items);
    return items.map((i) => `ok${i}`);
  });
  const results = await Promise.all([1, 2, 3].map((i) => g.commit(i)));
  assert.deepEqual(results, ['ok1', 'ok2', 'ok3']);
  assert.deepEqual(writes, [[1, 2, 3]], 'one write for the whole turn');
});

test('group commit: a failing batch is retried item by item, so one bad item fails only its caller', async () => {
  const writes: number[][] = [];
  const g = new GroupCommitter<number, string>((items) => {
    writes.push(items);
    if (items.includes(2)) throw new Error('bad row 2');
    return items.map((i) => `ok${i}`);
  });
  const results = await Promise.allSettled([1, 2, 3].map((i) => g.commit(i)));
  assert.deepEqual(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)), ['ok1', 'bad row 2', 'ok3']);
  assert.deepEqual(writes, [[1, 2, 3], [1], [2], [3]]);
});
