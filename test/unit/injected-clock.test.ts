/**
 * Node-level timing runs on the injected clock: the reachability self-check's retry schedule and
 * the tor control client's command deadline move only when a ManualClock is advanced.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { ManualClock } from '../../src/clock.js';
import { silentLogger } from '../../src/log.js';
import { Reachability, selfCheckDelay } from '../../src/node/index.js';
import { TorSocketError, connectControl } from '../../src/tor/index.js';

/** Lets pending promise callbacks and I/O run (no time passes on the manual clock). */
const flush = () => new Promise<void>((r) => setImmediate(r));

test('self-check: retries at 1 s × attempt (capped at 5 s) on the injected clock, stops at its deadline', async () => {
  const clock = new ManualClock();
  const start = clock.now();
  const tries: number[] = [];
  const changes: boolean[] = [];
  const r = new Reachability({
    probe: async () => {
      tries.push(clock.now() - start);
      throw new Error('not yet');
    },
    clock, logger: silentLogger(), timeoutMs: 20_000, onChange: (v) => changes.push(v),
  });
  const done = r.check();
  await flush();
  assert.deepEqual(tries, [0], 'first try at once');
  for (let i = 0; i < 50 && clock.pending > 0; i++) {
    clock.advance(1000);
    await flush();
  }
  await done;
  const expected: number[] = [0];
  for (let a = 1; expected[expected.length - 1]! + selfCheckDelay(a) < 20_000; a++) expected.push(expected[expected.length - 1]! + selfCheckDelay(a));
  assert.deepEqual(tries, expected, 'tries at 0, 1, 3, 6, 10, 15 s: the schedule, in clock time');
  assert.deepEqual(tries.slice(0, 6), [0, 1000, 3000, 6000, 10_000, 15_000]);
  assert.equal(clock.pending, 0, 'no timer left behind');
  assert.equal(r.reachable, false);
  assert.deepEqual(changes, []);
});

test('self-check: reachable after a passing try; lost() drops it at once and stops the running check', async () => {
  const clock = new ManualClock();
  let pass = false;
  let tries = 0;
  const changes: boolean[] = [];
  const r = new Reachability({
    probe: async () => {
      tries++;
      if (!pass) throw new Error('not yet');
    },
    clock, logger: silentLogger(), timeoutMs: 60_000, onChange: (v) => changes.push(v),
  });
  const first = r.check();
  await flush();
  pass = true;
  clock.advance(1000);
  await first;
  assert.equal(r.reachable, true);
  assert.equal(tries, 2);
  pass = false;
  const second = r.check();
  await flush();
  r.lost();
  assert.equal(r.reachable, false, 'unreachable the moment it is lost');
  await second;
  assert.equal(clock.pending, 0, 'the lost check left no timer');
  assert.deepEqual(changes, [true, false]);
  r.close();
});

test('control client: a command without a reply fails when the injected clock passes commandTimeoutMs, not before', async (t) => {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
    s.resume(); // reads, never answers
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  }));
  const clock = new ManualClock();
  const control = await connectControl({ port: (server.address() as AddressInfo).port, clock, commandTimeoutMs: 60_000 });
  let settled: unknown = 'pending';
  const reply = control.command('GETINFO version').then(() => 'resolved', (e: unknown) => e);
  void reply.then((v) => (settled = v));
  await flush();
  clock.advance(59_999);
  await flush();
  assert.equal(settled, 'pending', 'still waiting one ms before the deadline');
  clock.advance(1);
  const err = await reply;
  assert.ok(err instanceof TorSocketError && err.code === 'CONNECTION_CLOSED' && /no reply to GETINFO within 60000 ms/.test(err.message), String(err));
  assert.equal(control.closed, true);
  await control.close();
});
