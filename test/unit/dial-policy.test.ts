/**
 * Dial waits: a peer reached before gets a timeout scaled to its last dial (within bounds), and one
 * attempt dials a second time only after a fast transient failure or a shortened timeout — never
 * after "the peer looks offline". Driven on a ManualClock with in-memory channels: no real time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/clock.js';
import { resolveLimits } from '../../src/limits.js';
import { silentLogger } from '../../src/log.js';
import { Connections, DEFAULT_DIAL_POLICY, dialTimeout, secondDial, type Dialer } from '../../src/pipeline/index.js';
import { PeerConnection } from '../../src/protocol/index.js';
import { socksReplyError } from '../../src/tor/index.js';
import { TransportError, createMemoryPair, type MessageChannel } from '../../src/transport/index.js';

const P = DEFAULT_DIAL_POLICY;
const flush = () => new Promise<void>((r) => setImmediate(r));

test('dial timeout: full for a peer never reached; 4× its last dial, within [10 s, 30 s], for one reached before', () => {
  assert.equal(dialTimeout(P, undefined), 30_000);
  assert.equal(dialTimeout(P, 200), 10_000, 'a fast peer gets the floor');
  assert.equal(dialTimeout(P, 5_000), 20_000);
  assert.equal(dialTimeout(P, 20_000), 30_000, 'never more than the ceiling');
  assert.equal(dialTimeout({ ...P, maxMs: 5_000 }, 200), 5_000, 'a ceiling below the floor wins');
});

test('second dial: after a fast transient failure or a shortened timeout, within the budget; never after "offline"', () => {
  const soon = { retryClass: 'soon' as const, code: 'ONION_INTRO_FAILED', timeoutMs: 30_000 };
  assert.deepEqual(secondDial(P, { ...soon, elapsedMs: 300 }), { pauseMs: 1_000, timeoutMs: 28_700 });
  assert.equal(secondDial(P, { ...soon, elapsedMs: 8_000 }), null, 'not fast: the backoff decides');
  assert.equal(secondDial(P, { ...soon, elapsedMs: 300, retryClass: 'later', code: 'ONION_DESC_NOT_FOUND' }), null, 'peer looks offline: one dial per step');
  assert.equal(secondDial(P, { ...soon, elapsedMs: 300, retryClass: 'never', code: 'ONION_BAD_ADDRESS' }), null);
  assert.deepEqual(secondDial(P, { elapsedMs: 10_000, timeoutMs: 10_000, code: 'DIAL_TIMEOUT', retryClass: undefined }), { pauseMs: 0, timeoutMs: 20_000 }, 'a shortened timeout ran out: the rest of the budget');
  assert.equal(secondDial(P, { elapsedMs: 30_000, timeoutMs: 30_000, code: 'DIAL_TIMEOUT', retryClass: undefined }), null, 'the whole budget is spent');
  assert.equal(secondDial({ ...P, maxMs: 5_000 }, { ...soon, elapsedMs: 300 }), null, 'less than the floor left');
});

/** A dialer that answers from a script; successful dials get a server that completes the handshake. */
function scriptedDialer(script: ('ok' | Error)[]) {
  const calls: number[] = [];
  const servers: PeerConnection[] = [];
  const dialer: Dialer = {
    async dial(_onion, opts) {
      calls.push(opts.timeoutMs);
      const step = script.shift();
      if (step === undefined || step instanceof Error) throw step ?? new Error('script ran out');
      const [a, b] = createMemoryPair();
      servers.push(new PeerConnection({ channel: b, role: 'server', handlers: { onDeliver: async () => ({ reject: { code: 1, retryable: false, reason: '' } }), onBundleRequest: () => new Uint8Array(0) } }));
      return a as MessageChannel;
    },
  };
  return { dialer, calls, servers };
}

const viaTor = (rep: number) => new TransportError('DIAL_FAILED', 'dial failed', { cause: socksReplyError(rep, 'x.onion:80') });

test('connections: a fast intro failure is followed by one more dial after the pause; the next dial to that peer is shortened', async () => {
  const clock = new ManualClock();
  const s = scriptedDialer([viaTor(0xf2), 'ok', 'ok']);
  const conns = new Connections({ dialer: s.dialer, limits: resolveLimits(), clock, logger: silentLogger() });
  const ctl = new AbortController();
  const connected = conns.connect('peer', ctl.signal);
  await flush();
  assert.deepEqual(s.calls, [30_000], 'first dial: never reached, full timeout');
  clock.advance(999);
  await flush();
  assert.equal(s.calls.length, 1, 'waits the pause');
  clock.advance(1);
  await flush();
  assert.deepEqual(s.calls, [30_000, 29_000], 'second dial with the rest of the budget');
  const conn = await connected;
  assert.equal(conn.state, 'open');
  conns.destroyAll();
  await flush();
  await conns.connect('peer', ctl.signal);
  assert.deepEqual(s.calls.slice(2), [10_000], 'reached before (in no time): the floor');
  conns.destroyAll();
  for (const srv of s.servers) srv.destroy();
});

test('connections: "descriptor not found" (the peer looks offline) costs one dial, not two', async () => {
  const clock = new ManualClock();
  const s = scriptedDialer([viaTor(0xf0), 'ok']);
  const conns = new Connections({ dialer: s.dialer, limits: resolveLimits(), clock, logger: silentLogger() });
  await assert.rejects(conns.connect('peer', new AbortController().signal), (e: unknown) => e instanceof TransportError && e.retryAdvice?.code === 'ONION_DESC_NOT_FOUND');
  assert.deepEqual(s.calls, [30_000]);
  assert.equal(clock.pending, 0, 'no pause left armed');
});
