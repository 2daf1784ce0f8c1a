/**
 * The listener + PeerConnection under abuse, on real sockets on 127.0.0.1. Each test ends by checking
 * that a well-behaved client on the same listener still completes HELLO and DELIVER: one bad peer
 * costs its own connection, never the server or the process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import { resolveLimits } from '../../src/limits.js';
import {
  PeerConnection, RejectCode, decodeFrame, encodeFrame, type Frame, type ServerHandlers,
} from '../../src/protocol/index.js';
import { TransportError, createWsListener, dialWs, type MessageChannel, type WsListener } from '../../src/transport/index.js';
import { rawUpgrade } from '../fixtures/attacks.js';

const limits = resolveLimits({ maxFrame: 8192, maxEnvelope: 4096, maxConnections: 4, handshakeTimeoutMs: 2_000 });

const handlers: ServerHandlers = {
  onDeliver: async (messageId) => ({ receipt: new Uint8Array(16).fill(messageId[0]!) }),
  onBundleRequest: () => Uint8Array.of(1),
};

async function startServer(): Promise<{ listener: WsListener; url: string; peers: PeerConnection[]; channels: MessageChannel[] }> {
  const peers: PeerConnection[] = [];
  const channels: MessageChannel[] = [];
  const listener: WsListener = await createWsListener({
    limits,
    closeGraceMs: 300,
    onChannel: (channel) => {
      channels.push(channel);
      const peer = new PeerConnection({ channel, role: 'server', limits, handlers });
      peers.push(peer);
      void peer.ready.then(() => listener.handshakeDone(channel), () => {});
    },
  });
  return { listener, url: `ws://127.0.0.1:${listener.port}/`, peers, channels };
}

/** A well-behaved client: dial, HELLO, one DELIVER, close. */
async function wellBehaved(url: string, n = 42): Promise<void> {
  const channel = await dialWs({ url, limits, timeoutMs: 5_000 });
  const client = new PeerConnection({ channel, role: 'client', limits });
  const hello = await client.ready;
  assert.equal(hello.version, 2);
  const id = new Uint8Array(16).fill(n);
  const r = await client.deliver(id, Uint8Array.of(1, 2, 3), { timeoutMs: 5_000 });
  assert.equal(r.kind, 'receipt');
  assert.ok(r.kind === 'receipt' && r.mac[0] === n);
  await client.close();
}

/** A raw ws client with a larger maxPayload than the server, collecting decoded frames. */
function rawClient(url: string) {
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1 << 24 });
  const frames: Frame[] = [];
  ws.on('message', (d: Buffer) => frames.push(decodeFrame(new Uint8Array(d), limits)));
  ws.on('error', () => {}); // the test reads the outcome from 'close'
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return { ws, frames, opened, closed };
}

test('an oversized frame gets 1009 while another client on the same listener completes HELLO/DELIVER', async () => {
  const { listener, url } = await startServer();
  try {
    const bad = rawClient(url);
    await bad.opened;
    const good = wellBehaved(url, 1);
    bad.ws.send(encodeFrame({ type: 'HELLO', versions: [2], capabilities: [] }));
    bad.ws.send(new Uint8Array(limits.maxFrame + 1));
    assert.equal((await bad.closed).code, 1009);
    await good;
    await wellBehaved(url, 2);
  } finally {
    await listener.close();
  }
});

test('garbage bytes → REJECT MALFORMED, then close; the server keeps serving', async () => {
  const { listener, url, peers } = await startServer();
  try {
    const bad = rawClient(url);
    await bad.opened;
    bad.ws.send(encodeFrame({ type: 'HELLO', versions: [2], capabilities: [] }));
    bad.ws.send(randomBytes(100).fill(0xee, 0, 1)); // first byte 0xee: not our wire version
    bad.ws.send(Uint8Array.of(1, 4, 9, 9, 9));
    const closed = await bad.closed;
    assert.equal(closed.code, 1002);
    assert.deepEqual(bad.frames.map((f) => f.type), ['HELLO', 'REJECT']);
    const reject = bad.frames[1]!;
    assert.ok(reject.type === 'REJECT' && reject.code === RejectCode.UNSUPPORTED_VERSION);
    const bad2 = rawClient(url);
    await bad2.opened;
    bad2.ws.send(encodeFrame({ type: 'HELLO', versions: [2], capabilities: [] }));
    bad2.ws.send(Uint8Array.of(1, 4, 9, 9, 9));
    assert.equal((await bad2.closed).code, 1002);
    const r2 = bad2.frames.at(-1)!;
    assert.ok(r2.type === 'REJECT' && r2.code === RejectCode.MALFORMED);
    const text = rawClient(url);
    await text.opened;
    text.ws.send('hello, text');
    assert.equal((await text.closed).code, 1003);
    await wellBehaved(url);
    assert.ok(peers.length >= 4);
  } finally {
    await listener.close();
  }
});

/** A raw upgraded socket (test/fixtures/attacks.ts) and everything the server sends until it closes. */
async function rawUpgraded(port: number): Promise<{ socket: Socket; ended: Promise<Buffer> }> {
  const { socket, status } = await rawUpgrade({ port });
  if (!socket) throw new Error(`bad upgrade answer: ${status}`);
  const ended = new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.once('close', () => resolve(Buffer.concat(chunks)));
  });
  socket.resume();
  return { socket, ended };
}

/** The close code in the first server frame, if it is a close frame (server frames are unmasked). */
function closeCodeOf(bytes: Buffer): number | undefined {
  const i = bytes.indexOf(0x88);
  if (i < 0 || bytes.length < i + 4) return undefined;
  return bytes.readUInt16BE(i + 2);
}

test('hand-built malformed WebSocket frames over a raw socket: closed, process alive, server serving', async () => {
  const { listener, url } = await startServer();
  try {
    const mask = Buffer.from([1, 2, 3, 4]);
    const cases: { name: string; frame: Buffer; code: number }[] = [
      // RSV1 set without an extension, binary, masked, empty.
      { name: 'RSV1', frame: Buffer.concat([Buffer.from([0xc2, 0x80]), mask]), code: 1002 },
      // Reserved opcode 0x3.
      { name: 'opcode 3', frame: Buffer.concat([Buffer.from([0x83, 0x80]), mask]), code: 1002 },
      // A client frame without the mask bit.
      { name: 'unmasked', frame: Buffer.from([0x82, 0x01, 0x00]), code: 1002 },
      // 64-bit length with the top bit set.
      { name: '2^63 length', frame: Buffer.concat([Buffer.from([0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0]), mask]), code: 1009 },
      // Declared length just over maxPayload; the payload never comes.
      { name: 'over maxPayload', frame: Buffer.concat([Buffer.from([0x82, 0xfe]), Buffer.from([0x20, 0x01]), mask]), code: 1009 },
      // A fragmented control frame (ping without FIN).
      { name: 'fragmented ping', frame: Buffer.concat([Buffer.from([0x09, 0x80]), mask]), code: 1002 },
    ];
    for (const c of cases) {
      const { socket, ended } = await rawUpgraded(listener.port);
      socket.write(c.frame);
      const got = await ended;
      assert.equal(closeCodeOf(got), c.code, c.name);
    }
    await wellBehaved(url);
  } finally {
    await listener.close();
  }
});

test('connection slots: a full listener closes its oldest unproven connection for a newcomer; 503 only when every slot is proven', async () => {
  const { listener, url, channels } = await startServer();
  try {
    // Upgrades that never send HELLO fill every slot…
    const held = Array.from({ length: limits.maxConnections }, () => rawClient(url));
    await Promise.all(held.map((h) => h.opened));
    // …and a well-behaved newcomer still gets in: the oldest of them makes room.
    await wellBehaved(url, 3);
    const first = await held[0]!.closed;
    assert.equal(first.code, 1006, 'the oldest pending connection was cut');
    for (const h of held) h.ws.terminate();
    for (let i = 0; i < 100 && listener.connections > 0; i++) await new Promise((r) => setTimeout(r, 10));

    // Proven peers are never closed to make room: with every slot proven, a newcomer gets 503.
    const proven = Array.from({ length: limits.maxConnections }, () => rawClient(url));
    await Promise.all(proven.map((h) => h.opened));
    for (let i = 0; i < 100 && channels.filter((c) => c.state === 'open').length < limits.maxConnections; i++) await new Promise((r) => setTimeout(r, 10));
    for (const c of channels) if (c.state === 'open') listener.setTrust(c, 'proven');
    let err: unknown;
    try {
      await dialWs({ url, limits, timeoutMs: 5_000 });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof TransportError);
    assert.equal(err.code, 'DIAL_REJECTED');
    assert.equal(err.status, 503);
    assert.equal(listener.stats().cut.refused, 1);
    proven[0]!.ws.close();
    await proven[0]!.closed;
    for (let i = 0; i < 100 && listener.connections >= limits.maxConnections; i++) await new Promise((r) => setTimeout(r, 10));
    await wellBehaved(url);
    for (const h of proven) h.ws.terminate();
  } finally {
    await listener.close();
  }
});
