import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { createHash } from 'node:crypto';
import { channelContract } from '../fixtures/channel-contract.js';
import { TransportError, createWsListener, dialWs, type MessageChannel, type WsListener } from '../../src/transport/index.js';

const maxFrame = 4096;
// The channel contract is about channels: the listener's admission budgets (tested in wire-abuse
// and the adversarial tier) are set out of its way.
const limits = { maxFrame, unprovenFramesPerSecond: 100_000, unprovenFrameBurst: 100_000 };

/** A listener plus one dialed channel; `flip` makes the accepted (server) side `a`. */
async function wsPair(flip: boolean) {
  let accept!: (c: MessageChannel) => void;
  const accepted = new Promise<MessageChannel>((r) => (accept = r));
  const listener = await createWsListener({ limits, onChannel: accept, closeGraceMs: 200 });
  const client = await dialWs({ url: `ws://127.0.0.1:${listener.port}/`, limits, timeoutMs: 5_000 });
  const server = await accepted;
  const [a, b] = flip ? [server, client] : [client, server];
  return { a, b, cleanup: async () => { a.destroy(); b.destroy(); await listener.close(); } };
}

channelContract('ws dialer side', () => wsPair(false), { maxFrame });
channelContract('ws listener side', () => wsPair(true), { maxFrame });

async function dialCode(p: Promise<unknown>): Promise<TransportError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof TransportError, `expected TransportError, got ${String(err)}`);
    return err;
  }
  assert.fail('dial succeeded');
}

test('dial: refused port → DIAL_FAILED with the socket error as cause', async () => {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  const err = await dialCode(dialWs({ url: `ws://127.0.0.1:${port}/`, limits }));
  assert.equal(err.code, 'DIAL_FAILED');
  assert.equal((err.cause as { code?: string }).code, 'ECONNREFUSED');
});

test("dial: the agent's own error object is the cause, unchanged", async () => {
  class SocksError extends Error {
    readonly socksReply = 4; // host unreachable
  }
  const socksErr = new SocksError('SOCKS: host unreachable');
  // What a SOCKS agent does when Tor refuses: createConnection's callback gets its typed error.
  const agent = new Agent();
  agent.createConnection = ((_opts: unknown, cb?: (err: Error | null, s?: Socket) => void) => {
    setImmediate(() => cb?.(socksErr));
    return undefined;
  }) as unknown as typeof agent.createConnection;
  const err = await dialCode(dialWs({ url: 'ws://abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvw.onion/', agent, limits }));
  assert.equal(err.code, 'DIAL_FAILED');
  assert.equal(err.cause, socksErr);
});

/** A TCP server that accepts and never answers (a dead onion, a stalled circuit). */
async function blackhole(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const srv = createServer((s) => {
    sockets.add(s);
    s.on('error', () => sockets.delete(s));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as { port: number }).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

test('dial: a server that never answers → DIAL_TIMEOUT; abort → DIAL_ABORTED with the reason', async () => {
  const hole = await blackhole();
  try {
    const t0 = Date.now();
    const err = await dialCode(dialWs({ url: `ws://127.0.0.1:${hole.port}/`, limits, timeoutMs: 150 }));
    assert.equal(err.code, 'DIAL_TIMEOUT');
    assert.ok(Date.now() - t0 < 2_000);
    const ac = new AbortController();
    const p = dialWs({ url: `ws://127.0.0.1:${hole.port}/`, limits, signal: ac.signal });
    setTimeout(() => ac.abort(new Error('user cancelled')), 50);
    const err2 = await dialCode(p);
    assert.equal(err2.code, 'DIAL_ABORTED');
    assert.equal((err2.cause as Error).message, 'user cancelled');
    const err3 = await dialCode(dialWs({ url: `ws://127.0.0.1:${hole.port}/`, limits, signal: AbortSignal.abort() }));
    assert.equal(err3.code, 'DIAL_ABORTED');
  } finally {
    await hole.close();
  }
});

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('listener: only / upgrades; plain HTTP goes to httpHandler or 404', async () => {
  const plain = await createWsListener({ limits, onChannel: (c) => c.destroy() });
  const served = await createWsListener({
    limits,
    onChannel: (c) => c.destroy(),
    httpHandler: (req, res) => res.writeHead(200).end(`hello ${req.url}`),
  });
  try {
    assert.equal((await httpGet(plain.port, '/')).status, 404);
    assert.deepEqual(await httpGet(served.port, '/status'), { status: 200, body: 'hello /status' });
    const err = await dialCode(dialWs({ url: `ws://127.0.0.1:${plain.port}/other`, limits }));
    assert.equal(err.code, 'DIAL_REJECTED');
    assert.equal(err.status, 404);
  } finally {
    await Promise.all([plain.close(), served.close()]);
  }
});

test('listener: close() closes channels with 1001, is idempotent, and refuses new dials', async () => {
  const channels: MessageChannel[] = [];
  const listener: WsListener = await createWsListener({ limits, onChannel: (c) => channels.push(c), closeGraceMs: 500 });
  const client = await dialWs({ url: `ws://127.0.0.1:${listener.port}/`, limits });
  const closed = new Promise<{ code: number }>((r) => client.once('close', r));
  while (listener.connections < 1) await new Promise((r) => setTimeout(r, 5));
  const p1 = listener.close();
  assert.equal(listener.close(), p1);
  await p1;
  assert.equal((await closed).code, 1001);
  assert.equal(listener.connections, 0);
  const err = await dialCode(dialWs({ url: `ws://127.0.0.1:${listener.port}/`, limits, timeoutMs: 2_000 }));
  assert.equal(err.code, 'DIAL_FAILED');
});

test('close() against a peer that never answers the close falls back to destroy after closeTimeoutMs', async () => {
  // A server that completes the upgrade, then ignores everything (a wedged peer or a dead circuit).
  const sockets = new Set<Socket>();
  const srv = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.once('data', (d: Buffer) => {
      const key = /Sec-WebSocket-Key: (\S+)/i.exec(d.toString())?.[1] ?? '';
      const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const ch = await dialWs({ url: `ws://127.0.0.1:${(srv.address() as { port: number }).port}/`, limits, closeTimeoutMs: 200 });
    const closed = new Promise<{ code: number }>((r) => ch.once('close', r));
    const t0 = Date.now();
    await ch.close(1000, 'bye');
    const waited = Date.now() - t0;
    assert.equal((await closed).code, 1006);
    assert.ok(waited >= 150 && waited < 2_000, `waited ${waited} ms`);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  }
});
