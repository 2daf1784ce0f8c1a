import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/clock.js';
import { DEFAULT_LIMITS, resolveLimits, type Limits } from '../../src/limits.js';
import {
  NO_MESSAGE_ID, PeerConnection, ProtocolError, RejectCode, TokenBucket, closedForMisbehaviour, decodeFrame, encodeFrame, heartbeatStep, negotiateVersion, parseWindow,
  type DeliverAnswer, type Frame, type ServerHandlers,
} from '../../src/protocol/index.js';
import { createMemoryPair, type ChannelCloseInfo, type MessageChannel } from '../../src/transport/index.js';

const LIMITS = resolveLimits({ maxFrame: 8192, maxEnvelope: 4096, handshakeTimeoutMs: 1_000, heartbeatIntervalMs: 500, heartbeatTimeoutMs: 800 });

/** Lets the memory pair's setImmediate deliveries and promise chains run. */
async function flush(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

function id(n: number): Uint8Array {
  return Uint8Array.from({ length: 16 }, (_, i) => (n + i) & 0xff);
}

function receiptFor(messageId: Uint8Array): DeliverAnswer {
  return { receipt: new Uint8Array(16).fill(messageId[0]!) };
}

const okHandlers: ServerHandlers = {
  onDeliver: async (messageId) => receiptFor(messageId),
  onBundleRequest: () => Uint8Array.of(9, 9, 9),
};

function pair(opts: { handlers?: ServerHandlers; limits?: Partial<Limits>; clock?: ManualClock } = {}) {
  const clock = opts.clock ?? new ManualClock();
  const limits = { ...LIMITS, ...opts.limits };
  const [c, s] = createMemoryPair({ limits, clock });
  const client = new PeerConnection({ channel: c, role: 'client', limits, clock });
  const server = new PeerConnection({ channel: s, role: 'server', limits, clock, handlers: opts.handlers ?? okHandlers, capabilities: ['mailbox'] });
  return { client, server, clock };
}

/** A hand-driven peer on the raw channel: records decoded frames and the close. */
function raw(channel: MessageChannel) {
  const frames: Frame[] = [];
  let closeInfo: ChannelCloseInfo | undefined;
  channel.on('message', (b) => frames.push(decodeFrame(b, LIMITS)));
  channel.on('close', (info) => (closeInfo = info));
  return {
    frames,
    get closed() {
      return closeInfo;
    },
    send: (f: Frame) => channel.send(encodeFrame(f)),
    sendBytes: (b: Uint8Array) => channel.send(b),
    close: (code: number, reason: string) => channel.close(code, reason),
    hello: () => channel.send(encodeFrame({ type: 'HELLO', versions: [2], capabilities: [] })),
  };
}

function serverWithRaw(opts: { handlers?: ServerHandlers; limits?: Partial<Limits>; role?: 'client' | 'server' } = {}) {
  const clock = new ManualClock();
  const limits = { ...LIMITS, ...opts.limits };
  const [a, b] = createMemoryPair({ limits, clock });
  const peer = new PeerConnection({ channel: a, role: opts.role ?? 'server', limits, clock, handlers: opts.handlers ?? okHandlers });
  return { peer, remote: raw(b), clock };
}

test('pure helpers: version negotiation, token bucket, heartbeat steps', () => {
  assert.equal(negotiateVersion([1], [1]), 1);
  assert.equal(negotiateVersion([1, 2, 3], [3, 2, 9]), 3);
  assert.equal(negotiateVersion([1], [2, 3]), undefined);
  const b = new TokenBucket(10, 3, 0);
  assert.deepEqual([b.take(0), b.take(0), b.take(0), b.take(0)], [true, true, true, false]);
  assert.equal(b.take(99), false);
  assert.equal(b.take(100), true); // 10/s → one token per 100 ms
  assert.equal(b.take(100_000), true);
  const l = { heartbeatIntervalMs: 500, heartbeatTimeoutMs: 800 };
  assert.deepEqual(heartbeatStep(1000, 900, undefined, l), { action: 'wait', delayMs: 400 });
  assert.deepEqual(heartbeatStep(1400, 900, undefined, l), { action: 'ping', delayMs: 800 });
  assert.deepEqual(heartbeatStep(1500, 900, 1400, l), { action: 'wait', delayMs: 700 });
  assert.deepEqual(heartbeatStep(2200, 900, 1400, l), { action: 'timeout' });
  assert.deepEqual(heartbeatStep(2200, 1450, 1400, l), { action: 'ping', delayMs: 800 }); // a frame arrived after the PING
});

test('handshake: both sides send HELLO, agree on version 2, see capabilities', async () => {
  const { client, server, clock } = pair();
  await flush();
  const [hc, hs] = await Promise.all([client.ready, server.ready]);
  assert.deepEqual(hc, { version: 2, capabilities: ['mailbox', `window=${LIMITS.maxPendingDelivers}`] });
  assert.deepEqual(hs, { version: 2, capabilities: [`window=${LIMITS.maxPendingDelivers}`] });
  assert.equal(client.state, 'open');
  await client.close();
  await server.closed;
  assert.equal(clock.pending, 0, 'every timer cleared');
});

test('a peer that never sends HELLO is closed after handshakeTimeoutMs', async () => {
  const { peer, remote, clock } = serverWithRaw();
  await flush();
  assert.equal(remote.frames[0]?.type, 'HELLO', 'we speak first');
  clock.advance(LIMITS.handshakeTimeoutMs - 1);
  assert.equal(peer.state, 'handshaking');
  clock.advance(1);
  const info = await peer.closed;
  assert.ok(info.error instanceof ProtocolError);
  assert.equal(info.error.code, 'HANDSHAKE_TIMEOUT');
  assert.equal(closedForMisbehaviour(info), false, 'slow is not misbehaviour');
  await assert.rejects(peer.ready, (e: unknown) => e instanceof ProtocolError && e.code === 'HANDSHAKE_TIMEOUT');
  await flush();
  assert.equal(remote.closed?.code, 1008);
  assert.equal(clock.pending, 0);
});

test('no common version → REJECT UNSUPPORTED_VERSION naming both sides\' versions, close, NO_COMMON_VERSION', async () => {
  for (const theirs of [[7, 8], [1]]) {
    const { peer, remote } = serverWithRaw();
    remote.send({ type: 'HELLO', versions: theirs, capabilities: [] });
    const info = await peer.closed;
    assert.equal((info.error as ProtocolError).code, 'NO_COMMON_VERSION');
    assert.equal(closedForMisbehaviour(info), false, 'an older or newer peer is not misbehaving');
    await flush();
    const reject = remote.frames.find((f) => f.type === 'REJECT');
    assert.equal(reject?.type === 'REJECT' && reject.code, RejectCode.UNSUPPORTED_VERSION);
    assert.equal(reject?.type === 'REJECT' && reject.reason, `no common protocol version: you speak ${theirs.join(', ')}, this node speaks 2`);
  }
});

test('DELIVER → onDeliver → RECEIPT with exactly what the handler returned', async () => {
  const seen: [Uint8Array, Uint8Array][] = [];
  const { client } = pair({
    handlers: { ...okHandlers, onDeliver: async (m, e) => (seen.push([m, e]), receiptFor(m)) },
  });
  const envelope = Uint8Array.from({ length: 1072 }, (_, i) => i & 0xff);
  const p = client.deliver(id(5), envelope);
  await flush();
  const r = await p;
  assert.deepEqual(seen, [[id(5), envelope]]);
  const expected = receiptFor(id(5));
  assert.ok('receipt' in expected);
  assert.deepEqual(r, { kind: 'receipt', mac: expected.receipt });
});

test('a handler reject becomes REJECT; a handler throw becomes REJECT INTERNAL (retryable); a bad receipt is never sent', async () => {
  const { client, server } = pair({
    handlers: {
      ...okHandlers,
      onDeliver: async (m) => {
        if (m[0] === 1) return { reject: { code: RejectCode.EXPIRED, retryable: false, reason: 'expired' } };
        if (m[0] === 2) throw new Error('disk on fire');
        return { receipt: new Uint8Array(15) };
      },
    },
  });
  const results = Promise.all([client.deliver(id(1), Uint8Array.of(1)), client.deliver(id(2), Uint8Array.of(1)), client.deliver(id(3), Uint8Array.of(1))]);
  await flush(10);
  assert.deepEqual(await results, [
    { kind: 'reject', code: RejectCode.EXPIRED, retryable: false, reason: 'expired' },
    { kind: 'reject', code: RejectCode.INTERNAL, retryable: true, reason: 'internal error' },
    { kind: 'reject', code: RejectCode.INTERNAL, retryable: true, reason: 'internal error' },
  ]);
  assert.equal(server.state, 'open', 'handler failures do not cost the connection');
});

test('receipts of DELIVERs committed together leave in one RECEIPT frame, in the order they resolved', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const { peer, remote } = serverWithRaw({ handlers: { ...okHandlers, onDeliver: async (m) => (await gate, receiptFor(m)) } });
  remote.hello();
  for (const n of [1, 2, 3]) remote.send({ type: 'DELIVER', messageId: id(n), envelope: Uint8Array.of(n) });
  await flush(10);
  release();
  await flush(10);
  const receipts = remote.frames.filter((f) => f.type === 'RECEIPT');
  assert.equal(receipts.length, 1, 'one frame');
  assert.deepEqual(receipts[0], { type: 'RECEIPT', receipts: [1, 2, 3].map((n) => ({ messageId: id(n), mac: new Uint8Array(16).fill(id(n)[0]!) })) });
  peer.destroy();
});

test('concurrent delivers are correlated by messageId, whatever order the answers come in', async () => {
  const waiting = new Map<number, () => void>();
  const { client } = pair({
    handlers: {
      ...okHandlers,
      onDeliver: (m) => new Promise((resolve) => waiting.set(m[0]!, () => resolve(receiptFor(m)))),
    },
  });
  const ids = [10, 20, 30, 40, 50];
  const ps = ids.map((n) => client.deliver(id(n), Uint8Array.of(n)));
  await flush(10);
  assert.equal(waiting.size, 5);
  for (const n of [...ids].reverse()) waiting.get(n)!();
  await flush(10);
  const results = await Promise.all(ps);
  results.forEach((r, i) => {
    assert.equal(r.kind, 'receipt');
    assert.ok(r.kind === 'receipt' && r.mac[0] === ids[i]);
  });
  await assert.rejects(
    (async () => {
      const p = client.deliver(id(60), Uint8Array.of(1));
      const dup = client.deliver(id(60), Uint8Array.of(1));
      void p.catch(() => {});
      await dup;
    })(),
    (e: unknown) => e instanceof ProtocolError && e.code === 'DUPLICATE_REQUEST',
  );
});

test('a client that ignores the window: more than maxPendingDelivers in flight → REJECT RATE_LIMITED and close', async () => {
  const { peer, remote } = serverWithRaw({ limits: { maxPendingDelivers: 2 }, handlers: { ...okHandlers, onDeliver: () => new Promise(() => {}) } });
  remote.hello();
  for (const n of [1, 2, 3]) remote.send({ type: 'DELIVER', messageId: id(n), envelope: Uint8Array.of(1) });
  const info = await peer.closed;
  await flush();
  assert.equal((info.error as ProtocolError).code, 'RATE_LIMITED');
  assert.deepEqual(remote.frames[0], { type: 'HELLO', versions: [2], capabilities: ['window=2'] });
  const last = remote.frames.at(-1)!;
  assert.ok(last.type === 'REJECT' && last.code === RejectCode.RATE_LIMITED, 'told why');
  assert.equal(remote.closed?.code, 1008);
});

test("the client keeps at most the peer's window of DELIVERs on the wire and queues the rest in order", async () => {
  assert.equal(parseWindow(['mailbox', 'window=12']), 12);
  for (const bad of ['window=0', 'window=070', 'window=65536', 'window=', 'window=1x', 'windows=3']) assert.equal(parseWindow([bad]), undefined, bad);
  const clock = new ManualClock();
  const [c, s] = createMemoryPair({ limits: LIMITS, clock });
  const client = new PeerConnection({ channel: c, role: 'client', limits: LIMITS, clock });
  const seen: number[] = [];
  let pending = 0;
  let maxPending = 0;
  const answer: (() => void)[] = [];
  const server = new PeerConnection({
    channel: s, role: 'server', limits: { ...LIMITS, maxPendingDelivers: 2 }, clock,
    handlers: {
      ...okHandlers,
      onDeliver: (m) => {
        seen.push(m[0]!);
        maxPending = Math.max(maxPending, ++pending);
        return new Promise((resolve) => answer.push(() => {
          pending--;
          resolve(receiptFor(m));
        }));
      },
    },
  });
  const ps = [1, 2].map((n) => client.deliver(id(n), Uint8Array.of(n)));
  const gone = client.deliver(id(99), Uint8Array.of(1), { timeoutMs: 50 }); // queued behind the window, then times out
  ps.push(...[3, 4, 5, 6].map((n) => client.deliver(id(n), Uint8Array.of(n))));
  await flush(10);
  assert.deepEqual(seen, [1, 2], 'two on the wire, the rest queued');
  clock.advance(50);
  await assert.rejects(gone, (e: unknown) => e instanceof ProtocolError && e.code === 'TIMEOUT');
  for (let round = 0; round < 10 && answer.length > 0; round++) {
    answer.splice(0).forEach((a) => a());
    await flush(10);
  }
  const results = await Promise.all(ps);
  assert.ok(results.every((r) => r.kind === 'receipt'), 'no BUSY');
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 6], 'in call order; the one that timed out while queued was never sent');
  assert.equal(maxPending, 2);
  await client.close();
  await server.closed;
});

test('deliver times out (TIMEOUT), aborts (ABORTED), and fails with CLOSED when the connection goes', async () => {
  const { client, server, clock } = pair({ handlers: { ...okHandlers, onDeliver: () => new Promise(() => {}) } });
  await flush();
  const timed = client.deliver(id(1), Uint8Array.of(1), { timeoutMs: 300 });
  const ac = new AbortController();
  const aborted = client.deliver(id(2), Uint8Array.of(1), { signal: ac.signal });
  const orphan = client.deliver(id(3), Uint8Array.of(1));
  await flush();
  clock.advance(300);
  await assert.rejects(timed, (e: unknown) => e instanceof ProtocolError && e.code === 'TIMEOUT');
  ac.abort(new Error('stop'));
  await assert.rejects(aborted, (e: unknown) => e instanceof ProtocolError && e.code === 'ABORTED');
  server.destroy();
  await assert.rejects(orphan, (e: unknown) => e instanceof ProtocolError && e.code === 'CLOSED');
  await client.closed;
  await assert.rejects(client.deliver(id(4), Uint8Array.of(1)), (e: unknown) => e instanceof ProtocolError && e.code === 'CLOSED');
  assert.equal(clock.pending, 0);
});

test('deliver refuses an oversized envelope and a bad id without sending', async () => {
  const { client } = pair();
  await assert.rejects(client.deliver(id(1), new Uint8Array(LIMITS.maxEnvelope + 1)), (e: unknown) => e instanceof ProtocolError && e.code === 'TOO_LARGE');
  await assert.rejects(client.deliver(new Uint8Array(15), Uint8Array.of(1)), (e: unknown) => e instanceof ProtocolError && e.code === 'BAD_FIELD');
  await client.close();
});

test('bundle request → BUNDLE; a failing onBundleRequest → REMOTE_REJECT, connection kept', async () => {
  let fail = false;
  const { client, server } = pair({
    handlers: {
      ...okHandlers,
      onBundleRequest: async () => {
        if (fail) throw new Error('no bundle');
        return Uint8Array.of(1, 2, 3);
      },
    },
  });
  const p = client.requestBundle();
  await flush(10);
  assert.deepEqual(await p, Uint8Array.of(1, 2, 3));
  fail = true;
  const q = assert.rejects(client.requestBundle(), (e: unknown) => e instanceof ProtocolError && e.code === 'REMOTE_REJECT' && e.remoteReject?.code === RejectCode.INTERNAL);
  await flush(10);
  await q;
  assert.equal(server.state, 'open');
  assert.equal(client.state, 'open');
  await assert.rejects(server.requestBundle(), (e: unknown) => e instanceof ProtocolError && e.code === 'WRONG_ROLE');
});

test('heartbeat: idle peers PING/PONG and stay open', async () => {
  const { client, server, clock } = pair();
  await flush();
  await Promise.all([client.ready, server.ready]);
  for (let i = 0; i < 20; i++) {
    clock.advance(LIMITS.heartbeatIntervalMs);
    await flush();
  }
  assert.equal(client.state, 'open');
  assert.equal(server.state, 'open');
});

test('heartbeat: a silent peer is destroyed with PEER_TIMEOUT', async () => {
  const { peer, remote, clock } = serverWithRaw();
  remote.hello();
  await flush();
  await peer.ready;
  clock.advance(LIMITS.heartbeatIntervalMs);
  await flush();
  assert.equal(remote.frames.at(-1)?.type, 'PING');
  clock.advance(LIMITS.heartbeatTimeoutMs - 1);
  assert.equal(peer.state, 'open');
  clock.advance(1);
  const info = await peer.closed;
  assert.equal((info.error as ProtocolError).code, 'PEER_TIMEOUT');
  assert.equal(info.code, 1006);
});

test('rate limit: over framesPerSecond/frameBurst → REJECT RATE_LIMITED, then close', async () => {
  const { peer, remote } = serverWithRaw({ limits: { framesPerSecond: 10, frameBurst: 5 } });
  remote.hello();
  for (let i = 0; i < 10; i++) remote.send({ type: 'PING', nonce: BigInt(i) });
  const info = await peer.closed;
  assert.equal((info.error as ProtocolError).code, 'RATE_LIMITED');
  assert.ok(closedForMisbehaviour(info), 'its circuit is cooled');
  await flush();
  assert.deepEqual(remote.frames.map((f) => f.type), ['HELLO', 'PONG', 'PONG', 'PONG', 'PONG', 'REJECT']);
  const last = remote.frames.at(-1)!;
  assert.ok(last.type === 'REJECT' && last.code === RejectCode.RATE_LIMITED && last.retryable);
  assert.equal(remote.closed?.code, 1008);
});

test('garbage → REJECT MALFORMED then close; an oversized DELIVER → REJECT TOO_LARGE', async () => {
  {
    const { peer, remote } = serverWithRaw();
    remote.hello();
    remote.sendBytes(Uint8Array.of(1, 4, 1, 2, 3));
    const info = await peer.closed;
    assert.equal((info.error as ProtocolError).code, 'PEER_MALFORMED');
    assert.ok(closedForMisbehaviour(info), 'its circuit is cooled');
    await flush();
    const last = remote.frames.at(-1)!;
    assert.ok(last.type === 'REJECT' && last.code === RejectCode.MALFORMED && !last.retryable);
    assert.deepEqual(last.messageId, NO_MESSAGE_ID);
    assert.equal(remote.closed?.code, 1002);
  }
  {
    const { peer, remote } = serverWithRaw();
    remote.hello();
    const big = encodeFrame({ type: 'DELIVER', messageId: id(1), envelope: new Uint8Array(LIMITS.maxEnvelope + 1) });
    remote.sendBytes(big);
    await peer.closed;
    await flush();
    const last = remote.frames.at(-1)!;
    assert.ok(last.type === 'REJECT' && last.code === RejectCode.TOO_LARGE);
    assert.equal(remote.closed?.code, 1009);
  }
});

test('frames the role or state does not allow → REJECT UNEXPECTED_FRAME, close', async () => {
  {
    const { peer, remote } = serverWithRaw();
    remote.send({ type: 'DELIVER', messageId: id(1), envelope: Uint8Array.of(1) }); // before HELLO
    assert.equal(((await peer.closed).error as ProtocolError).code, 'UNEXPECTED_FRAME');
  }
  {
    const { peer, remote } = serverWithRaw({ role: 'client' });
    remote.hello();
    remote.send({ type: 'DELIVER', messageId: id(1), envelope: Uint8Array.of(1) }); // a server must not deliver
    assert.equal(((await peer.closed).error as ProtocolError).code, 'UNEXPECTED_FRAME');
    await flush();
    const last = remote.frames.at(-1)!;
    assert.ok(last.type === 'REJECT' && last.code === RejectCode.UNEXPECTED_FRAME);
  }
});

test('a connection-level REJECT then close from the peer: REMOTE_REJECT, pending requests fail CLOSED', async () => {
  const { peer, remote } = serverWithRaw({ role: 'client' });
  remote.hello();
  await flush();
  const pending = assert.rejects(peer.deliver(id(1), Uint8Array.of(1)), (e: unknown) =>
    e instanceof ProtocolError && e.code === 'CLOSED' && e.cause instanceof ProtocolError && e.cause.code === 'REMOTE_REJECT');
  remote.send({ type: 'REJECT', messageId: NO_MESSAGE_ID, code: RejectCode.RATE_LIMITED, retryable: true, reason: 'slow down' });
  await flush();
  assert.equal(peer.state, 'open', 'a REJECT alone does not close');
  void remote.close(1008, 'rate limited');
  const info = await peer.closed;
  assert.equal(info.code, 1008);
  assert.ok(info.error instanceof ProtocolError && info.error.code === 'REMOTE_REJECT');
  assert.deepEqual(info.error.remoteReject, { code: RejectCode.RATE_LIMITED, retryable: true, reason: 'slow down' });
  await pending;
});

test('defaults: DEFAULT_LIMITS has the heartbeat and rate fields the engine reads', () => {
  for (const k of ['handshakeTimeoutMs', 'heartbeatIntervalMs', 'heartbeatTimeoutMs', 'framesPerSecond', 'frameBurst', 'maxPendingDelivers'] as const) {
    assert.ok(DEFAULT_LIMITS[k] > 0, k);
  }
});

test('rate limit: answers to our own requests are not charged (a busy sender keeps its connection)', async () => {
  const clock = new ManualClock();
  const strict = { ...LIMITS, framesPerSecond: 1, frameBurst: 2 };
  const [c, s] = createMemoryPair({ limits: LIMITS, clock });
  const client = new PeerConnection({ channel: c, role: 'client', limits: strict, clock });
  const server = new PeerConnection({ channel: s, role: 'server', limits: LIMITS, clock, handlers: okHandlers });
  await client.ready;
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => client.deliver(id(i * 3), Uint8Array.of(i))));
  assert.equal(answers.filter((a) => a.kind === 'receipt').length, 20, '20 receipts through a 2-frame burst');
  assert.equal(client.state, 'open');
  await client.close();
  await server.closed;
});

test('rate limit: every frame nobody asked for is charged when it arrives (PONG, REJECT, RECEIPT, BUNDLE floods are closed)', async () => {
  const flood: Frame[] = [
    { type: 'PONG', nonce: 1n },
    { type: 'REJECT', messageId: NO_MESSAGE_ID, code: RejectCode.INTERNAL, retryable: true, reason: 'x' },
    { type: 'REJECT', messageId: id(9), code: RejectCode.INTERNAL, retryable: true, reason: 'x' },
  ];
  for (const f of flood) {
    const { peer, remote } = serverWithRaw({ limits: { framesPerSecond: 10, frameBurst: 5 } });
    remote.hello();
    for (let i = 0; i < 10; i++) remote.send(f);
    const info = await peer.closed;
    assert.equal((info.error as ProtocolError).code, 'RATE_LIMITED', `${f.type} flood on a server`);
  }
  // On a client: RECEIPTs for DELIVERs it never sent, and BUNDLEs it never asked for.
  for (const f of [
    { type: 'RECEIPT', receipts: [{ messageId: id(5), mac: new Uint8Array(16) }] },
    { type: 'BUNDLE', bundle: Uint8Array.of(1) },
  ] as Frame[]) {
    const { peer, remote } = serverWithRaw({ role: 'client', limits: { framesPerSecond: 10, frameBurst: 5 } });
    remote.hello();
    await peer.ready;
    for (let i = 0; i < 10; i++) remote.send(f);
    const info = await peer.closed;
    assert.equal((info.error as ProtocolError).code, f.type === 'BUNDLE' ? 'UNEXPECTED_FRAME' : 'RATE_LIMITED', `${f.type} flood on a client`);
  }
});

test('rate limit: the PONG to our PING is owed, not charged; the next one is', async () => {
  const { peer, remote, clock } = serverWithRaw({ limits: { framesPerSecond: 0.001, frameBurst: 1 } });
  remote.hello();
  await peer.ready;
  clock.advance(LIMITS.heartbeatIntervalMs);
  await flush();
  assert.equal(remote.frames.at(-1)?.type, 'PING');
  remote.send({ type: 'PONG', nonce: 0n }); // owed
  await flush();
  assert.equal(peer.state, 'open', 'the owed PONG cost nothing (the burst of 1 went on HELLO)');
  remote.send({ type: 'PONG', nonce: 0n }); // not owed: charged, and the bucket is empty
  const info = await peer.closed;
  assert.equal((info.error as ProtocolError).code, 'RATE_LIMITED');
});

test('pushed receipts: a client\'s RECEIPT reaches onReceipts in frames of at most maxReceiptsPerFrame; without the handler it is UNEXPECTED_FRAME', async () => {
  const got: { messageId: Uint8Array; mac: Uint8Array }[][] = [];
  const { client, server } = pair({ handlers: { ...okHandlers, onReceipts: (r) => got.push(r) }, limits: { maxReceiptsPerFrame: 2 } });
  await Promise.all([client.ready, server.ready]);
  const pushed = [1, 2, 3].map((n) => ({ messageId: id(n), mac: new Uint8Array(16).fill(n) }));
  await client.pushReceipts(pushed);
  await flush();
  assert.deepEqual(got.map((f) => f.length), [2, 1]);
  assert.deepEqual(got.flat(), pushed);
  await assert.rejects(client.pushReceipts([{ messageId: id(1), mac: new Uint8Array(15) }]), (e: unknown) => e instanceof ProtocolError && e.code === 'BAD_FIELD');
  await assert.rejects(server.pushReceipts(pushed), (e: unknown) => e instanceof ProtocolError && e.code === 'WRONG_ROLE');

  const plain = pair();
  await Promise.all([plain.client.ready, plain.server.ready]);
  await plain.client.pushReceipts(pushed.slice(0, 1));
  await flush();
  assert.equal(((await plain.server.closed).error as ProtocolError).code, 'UNEXPECTED_FRAME', 'a server that takes no pushed receipts closes the connection');
});

test('pushed bundle: a client\'s BUNDLE reaches onBundlePush; without the handler it is UNEXPECTED_FRAME', async () => {
  const got: Uint8Array[] = [];
  const { client, server } = pair({ handlers: { ...okHandlers, onBundlePush: (b) => got.push(b) } });
  await Promise.all([client.ready, server.ready]);
  await client.pushBundle(Uint8Array.of(1, 2, 3));
  await flush();
  assert.deepEqual(got, [Uint8Array.of(1, 2, 3)]);
  await assert.rejects(server.pushBundle(Uint8Array.of(1)), (e: unknown) => e instanceof ProtocolError && e.code === 'WRONG_ROLE');
  const plain = pair();
  await Promise.all([plain.client.ready, plain.server.ready]);
  await plain.client.pushBundle(Uint8Array.of(1));
  assert.equal(((await plain.server.closed).error as ProtocolError).code, 'UNEXPECTED_FRAME');
});
