/**
 * The inbound guard's pure parts and its decisions, with a hand-driven clock and stand-in sockets
 * (PassThrough streams): the frame meter against hand-built frames split at every byte, tor's PROXY
 * line, and the guard's slot, budget and buffer rules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { ManualClock } from '../../src/clock.js';
import { resolveLimits, type Limits } from '../../src/limits.js';
import { createLogger, silentLogger, type Logger } from '../../src/log.js';
import { InboundGuard, UNPROVEN_QUANTUM } from '../../src/transport/guard.js';
import { WsFrameMeter, type FrameHeader } from '../../src/transport/meter.js';
import { MAX_PROXY_LINE_BYTES, parseProxyHeader, proxyScope } from '../../src/transport/proxy-header.js';
import { TransportError } from '../../src/transport/index.js';
import { wsFrame } from '../fixtures/attacks.js';

test('meter: finds every frame start and header in a stream split at any byte, control frames inside a fragmented message', () => {
  const stream = Buffer.concat([
    wsFrame(0x2, Buffer.alloc(5, 1), false), // first fragment
    wsFrame(0x9, Buffer.from('pi')), // ping between fragments
    wsFrame(0x0, Buffer.alloc(300, 2), false), // 16-bit length
    wsFrame(0x0, Buffer.alloc(70_000, 3), true), // 64-bit length, final
    wsFrame(0x2, Buffer.alloc(0)), // empty message
  ]);
  for (const step of [1, 2, 3, 7, 13, 1000, stream.length]) {
    const meter = new WsFrameMeter();
    let starts = 0;
    const headers: FrameHeader[] = [];
    const seenInMessage: number[] = [];
    for (let i = 0; i < stream.length; i += step) {
      const r = meter.feed(stream.subarray(i, i + step), 0, { frameStart: () => (starts++, true), header: (h) => (headers.push(h), true) });
      assert.equal(r.at, Math.min(step, stream.length - i));
      if (meter.inMessage) seenInMessage.push(meter.messageBytes);
    }
    assert.equal(starts, 5, `step ${step}`);
    assert.deepEqual(headers.map((h) => [h.opcode, h.fin, h.length, h.control]), [
      [2, false, 5, false], [9, true, 2, true], [0, false, 300, false], [0, true, 70_000, false], [2, true, 0, false],
    ]);
    assert.equal(meter.inMessage, false);
    assert.ok(meter.atBoundary);
    assert.ok(Math.max(...seenInMessage, 0) < 5 + 300 + 70_000, 'the message is counted while incomplete, then released');
  }
});

test('meter: stops before a refused frame start (nothing of it consumed) and after a refused header', () => {
  const two = Buffer.concat([wsFrame(0x2, Buffer.from('ab')), wsFrame(0x2, Buffer.from('cd'))]);
  const m = new WsFrameMeter();
  let n = 0;
  const r = m.feed(two, 0, { frameStart: () => ++n < 2, header: () => true });
  assert.deepEqual(r, { at: 8, stop: 'start' });
  assert.ok(m.atBoundary);
  const r2 = m.feed(two, r.at, { frameStart: () => true, header: () => true });
  assert.deepEqual(r2, { at: 16 });
  const m2 = new WsFrameMeter();
  assert.deepEqual(m2.feed(two, 0, { frameStart: () => true, header: () => false }), { at: 6, stop: 'header' });
  const big = Buffer.from([0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  let h: FrameHeader | undefined;
  new WsFrameMeter().feed(big, 0, { frameStart: () => true, header: (x) => ((h = x), false) });
  assert.equal(h?.length, Infinity, 'a 2^63 length reads as Infinity');
});

test('PROXY v1: tor circuit id from the low 32 bits of the TCP6 source; incomplete, oversized and malformed lines', () => {
  const line = Buffer.from('PROXY TCP6 fc00:dead:beef:4dad::1:2a ::1 65535 80\r\nGET / HTTP/1.1');
  const p = parseProxyHeader(line)!;
  assert.equal(p.length, line.indexOf('GET'));
  assert.equal(p.header.circuitId, 0x1_002a);
  assert.equal(proxyScope(p.header), `circuit:${0x1_002a}`);
  assert.equal(parseProxyHeader(Buffer.from('PROXY TCP6 fc00:dead:beef:4dad::ffff:ffff ::1 1 80\r\n'))!.header.circuitId, 0xffff_ffff);
  assert.equal(parseProxyHeader(Buffer.from('PROXY TCP6 fc00:dead:beef:4dad:0:0:0:7 ::1 1 80\r\n'))!.header.circuitId, 7);
  assert.equal(proxyScope(parseProxyHeader(Buffer.from('PROXY TCP4 10.0.0.1 10.0.0.2 5 6\r\n'))!.header), 'source:10.0.0.1');
  assert.deepEqual(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'))!.header, { family: 'UNKNOWN' });
  assert.equal(parseProxyHeader(Buffer.from('PROXY TCP6 fc00::1')), undefined, 'incomplete: read more');
  assert.equal(parseProxyHeader(Buffer.from('PRO')), undefined);
  for (const bad of ['GET / HTTP/1.1\r\n', 'PROXY TCP6 nothex ::1 1 2\r\n', 'PROXY TCP6 ::1 ::1 99999 2\r\n', 'PROXY TCP9 a b 1 2\r\n', `PROXY ${'x'.repeat(MAX_PROXY_LINE_BYTES)}`]) {
    assert.throws(() => parseProxyHeader(Buffer.from(bad)), (e: unknown) => e instanceof TransportError && e.code === 'BAD_PROXY_HEADER', bad);
  }
});

function setup(over: Partial<Limits> = {}, log: Logger = silentLogger()) {
  const clock = new ManualClock();
  const limits = resolveLimits({
    maxConnections: 8, maxUnprovenConnections: 6, maxPendingHandshakes: 4, handshakeTimeoutMs: 10_000, handshakeTimeoutUnderPressureMs: 1_000,
    unprovenFramesPerSecond: 10, unprovenFrameBurst: 5, unprovenGlobalFramesPerSecond: 10, unprovenGlobalFrameBurst: 8,
    connectionCostFrames: 0, maxQueuedConnections: 4, ...over,
  });
  const refused: PassThrough[] = [];
  const guard = new InboundGuard({ limits, clock, log, refuse: (s) => refused.push(s as PassThrough) });
  /** A connection accepted and (unless `admit` is false) handed to admission; `proceeded` once admitted. */
  const open = (scope?: string, admit = true) => {
    const socket = new PassThrough();
    const conn = guard.accept(socket, scope);
    if (conn) socket.once('close', () => guard.closed(conn));
    const o = { socket, conn, proceeded: false };
    if (conn && admit) guard.admitConnection(conn, () => (o.proceeded = true));
    return o;
  };
  /** An upgraded connection whose forwarded bytes are collected. */
  const ws = (scope?: string) => {
    const o = open(scope);
    const got: Buffer[] = [];
    guard.upgraded(o.conn!, (b) => got.push(Buffer.from(b)));
    return { ...o, got, frames: () => Buffer.concat(got) };
  };
  return { clock, limits, guard, refused, open, ws };
}

const ping = wsFrame(0x9, Buffer.from('x'));

test('guard slots: the oldest pending connection makes room; proven ones never do; all proven → refused', () => {
  const { guard, open, refused } = setup();
  const a = Array.from({ length: 4 }, () => open());
  assert.equal(guard.stats().pending, 4);
  const e = open();
  assert.ok(e.conn);
  assert.ok(a[0]!.socket.destroyed, 'oldest pending closed for the newcomer');
  assert.equal(guard.stats().cut.room, 1);
  for (const x of [...a.slice(1), e]) guard.handshakeDone(x.conn!);
  // 4 open-but-unproven + 2 pending = the unproven cap (6): the next one costs an unproven one,
  // the oldest pending first.
  const f = [open(), open()];
  assert.equal(guard.stats().unproven, 6);
  const g = open();
  assert.ok(f[0]!.socket.destroyed);
  guard.handshakeDone(f[1]!.conn!);
  guard.handshakeDone(g.conn!);
  const h = open();
  assert.ok(a[1]!.socket.destroyed, 'with none pending, the oldest unproven');
  // Prove everything: now only the total cap (8) applies, and proven connections are not evicted.
  const live = [...a.slice(2), e, f[1]!, g, h];
  for (const x of live) guard.setTrust(x.conn!, 'proven');
  while (guard.stats().connections < 8) guard.setTrust(open().conn!, 'proven');
  const late = open();
  assert.equal(late.proceeded, false, 'every slot proven: refused');
  assert.deepEqual(refused, [late.socket]);
  assert.equal(guard.stats().connections, 8);
  assert.equal(guard.stats().cut.refused, 1);
  guard.close();
});

test('guard slots: a connection that never upgraded goes first; then one from the scope holding several pending', () => {
  const { ws, open } = setup();
  const lone = ws('circuit:1');
  const crowd = [ws('circuit:2'), ws('circuit:2')];
  const silent = open('circuit:4');
  ws('circuit:3');
  assert.ok(silent.socket.destroyed, 'the one that never upgraded went first, though youngest');
  ws('circuit:3');
  assert.equal(lone.socket.destroyed, false, 'the older lone connection stays');
  assert.ok(crowd[0]!.socket.destroyed, "the crowded circuit's oldest went");
});

test('guard slots: among connections that never upgraded, a crowded circuit loses one before an older lone one', () => {
  const { open } = setup();
  const lone = open('circuit:8');
  const crowd = [open('circuit:9'), open('circuit:9'), open('circuit:9')];
  open('circuit:10');
  assert.equal(lone.socket.destroyed, false);
  assert.ok(crowd[0]!.socket.destroyed);
});

test('guard deadline: pending connections get handshakeTimeoutMs, or the shorter one under pressure', () => {
  const { guard, open, clock } = setup();
  const a = open();
  clock.advance(9_999);
  assert.equal(a.socket.destroyed, false);
  clock.advance(2_000);
  assert.ok(a.socket.destroyed, 'past handshakeTimeoutMs');
  const b = [open(), open()]; // half the pending cap: pressure
  assert.equal(guard.stats().underPressure, true);
  clock.advance(1_500);
  assert.ok(b.every((x) => x.socket.destroyed), 'past the pressure deadline');
  assert.equal(guard.stats().cut['handshake-timeout'], 3);
  const c = open();
  guard.handshakeDone(c.conn!);
  clock.advance(60_000);
  assert.equal(c.socket.destroyed, false, 'an open connection has no handshake deadline');
  guard.close();
});

test('guard frames: charged at arrival per scope; an empty scope bucket cuts before ws sees the frame', () => {
  const { guard, ws } = setup({ unprovenGlobalFrameBurst: 1000, unprovenGlobalFramesPerSecond: 1000 });
  const w = ws();
  guard.data(w.conn!, Buffer.concat(Array.from({ length: 7 }, () => ping)));
  assert.ok(w.socket.destroyed, 'cut at the 6th frame (burst 5)');
  assert.equal(w.got.length, 0, 'nothing of that read reached ws');
  assert.equal(guard.stats().cut.rate, 1);
  const ok = ws();
  guard.data(ok.conn!, Buffer.concat(Array.from({ length: 5 }, () => ping)));
  assert.equal(ok.frames().length, 5 * ping.length);
  assert.equal(ok.socket.destroyed, false);
});

test('guard frames: the global unproven budget makes connections wait (paused), resumed in turn; proven scopes never wait', () => {
  const { guard, ws, clock } = setup();
  const a = ws();
  const b = ws();
  const five = Buffer.concat(Array.from({ length: 5 }, () => ping));
  guard.data(a.conn!, five); // global 8 → 3
  guard.data(b.conn!, five); // 3 pass, 2 wait
  assert.equal(a.frames().length, 5 * ping.length);
  assert.equal(b.frames().length, 3 * ping.length);
  assert.equal(b.socket.isPaused(), true, 'the waiting socket is paused: nothing more is read');
  assert.equal(guard.stats().waiting, 1);
  clock.advance(100); // 10/s: one token
  assert.equal(b.frames().length, 4 * ping.length);
  clock.advance(100);
  assert.equal(b.frames().length, 5 * ping.length);
  assert.equal(b.socket.isPaused(), false, 'resumed once its held bytes went through');
  assert.equal(guard.stats().waiting, 0);
  // A proven scope has its own (larger) bucket and skips the global one.
  const p = ws();
  guard.setTrust(p.conn!, 'proven');
  guard.data(p.conn!, Buffer.concat(Array.from({ length: 50 }, () => ping)));
  assert.equal(p.frames().length, 50 * ping.length);
  assert.equal(UNPROVEN_QUANTUM > 0, true);
  guard.close();
});

test('guard buffers: partly received messages are counted; over the unproven cap the biggest holder is cut', () => {
  const { guard, ws } = setup({ maxUnprovenBufferedBytes: 10_000, maxBufferedBytes: 100_000 });
  const a = ws();
  const b = ws();
  const head = Buffer.from(wsFrame(0x2, Buffer.alloc(20_000)).subarray(0, 8)); // 2 + 2 + 4 mask, declares 20 000
  guard.data(a.conn!, Buffer.concat([head, Buffer.alloc(7_000)]));
  assert.ok(guard.stats().unprovenBufferedBytes >= 7_000);
  guard.data(b.conn!, Buffer.concat([head, Buffer.alloc(4_000)]));
  assert.ok(a.socket.destroyed, 'the biggest holder was cut');
  assert.equal(b.socket.destroyed, false);
  assert.equal(guard.stats().cut.buffers, 1);
  assert.ok(guard.stats().unprovenBufferedBytes < 10_000);
  // b finishes its message: its bytes are released.
  guard.data(b.conn!, Buffer.alloc(16_000));
  assert.equal(guard.stats().bufferedBytes, 0);
  guard.close();
});

test('guard scopes: counters of a circuit survive its connections (a reconnect does not refill the bucket)', () => {
  const { guard, ws } = setup({ unprovenGlobalFrameBurst: 1000, unprovenGlobalFramesPerSecond: 1000 });
  const a = ws('circuit:42');
  guard.data(a.conn!, Buffer.concat(Array.from({ length: 4 }, () => ping)));
  a.socket.destroy();
  const b = ws('circuit:42');
  guard.data(b.conn!, Buffer.concat([ping, ping]));
  assert.ok(b.socket.destroyed, 'the same circuit had one token left of its burst of 5');
  const c = ws('circuit:43');
  guard.data(c.conn!, Buffer.concat([ping, ping]));
  assert.equal(c.socket.destroyed, false, 'another circuit has its own');
  guard.close();
});

test('guard log: a flood of closed connections is one warning per reason, then a count per interval', () => {
  const lines: { msg: string; repeated?: number; level: number }[] = [];
  const log = createLogger({ level: 'debug', destination: { write: (l: string) => void lines.push(JSON.parse(l)) } });
  const { guard, open, clock } = setup({}, log);
  for (let i = 0; i < 500; i++) open(); // 496 of them closed to make room
  const warns = () => lines.filter((l) => l.level === 40 && /room made/.test(l.msg));
  assert.equal(warns().length, 1, 'the first is logged, the rest counted');
  assert.equal(lines.filter((l) => /under pressure/.test(l.msg)).length, 1, 'pressure is one line when it starts');
  clock.advance(60_000);
  const summary = warns().find((l) => l.repeated !== undefined);
  assert.ok(summary, 'then one summary line');
  assert.equal(summary.repeated, guard.stats().cut.room - 1);
  guard.close();
});

test('guard connections: accepting costs connectionCostFrames; past the global budget a newcomer waits unread, in turn; a circuit that reconnects too often is cut', () => {
  const { guard, open, clock } = setup({ connectionCostFrames: 4 });
  const proceeded: number[] = [];
  const admit = (scope?: string) => {
    const o = open(scope, false);
    guard.admitConnection(o.conn!, () => proceeded.push(o.conn!.id));
    return o;
  };
  const a = admit();
  const b = admit();
  const c = admit(); // the global burst (8) paid for two
  assert.deepEqual(proceeded, [a.conn!.id, b.conn!.id]);
  assert.deepEqual([guard.stats().queued, guard.stats().connections], [1, 2], 'in line, holding no slot');
  // What it sends meanwhile is kept and counted, and handed over on admission.
  guard.hold(c.conn!, Buffer.from('GET / HTTP/1.1\r\n'));
  assert.ok(guard.stats().unprovenBufferedBytes >= 16);
  clock.advance(400); // 10/s: 4 tokens
  assert.deepEqual(proceeded, [a.conn!.id, b.conn!.id, c.conn!.id]);
  assert.equal(guard.stats().unprovenBufferedBytes, 0, 'its early bytes went on with it');
  // One circuit's budget (burst 5) pays for one connection (4), not two.
  clock.advance(10_000);
  const first = admit('circuit:7');
  assert.equal(first.socket.destroyed, false);
  const again = admit('circuit:7');
  assert.ok(again.socket.destroyed, 'the reconnect found its circuit over budget');
  guard.close();
});

test('guard line: a newcomer behind an attacker who reopens every closed slot is admitted in turn, and arrivals do not evict it', () => {
  // Global budget 10/s (burst 8), a connection costs 4: two admissions a burst, then one per 400 ms.
  const { guard, open, clock } = setup({ connectionCostFrames: 4, maxPendingHandshakes: 2, maxQueuedConnections: 6 });
  const attacker: ReturnType<typeof open>[] = [];
  const reopen = () => {
    for (let i = 0; i < 50; i++) {
      const live = attacker.filter((a) => !a.socket.destroyed);
      if (live.length >= 5) break;
      attacker.push(open());
    }
  };
  reopen();
  const stranger = open();
  assert.equal(stranger.proceeded, false, 'in line behind the attacker');
  // The attacker reconnects as fast as it is closed; the stranger's place in line holds.
  for (let step = 0; step < 40 && !stranger.proceeded; step++) {
    clock.advance(100);
    reopen();
    assert.equal(stranger.socket.destroyed, false, `step ${step}: still in line`);
  }
  assert.equal(stranger.proceeded, true, 'admitted');
  // Admitted, it is judged from its admission: later arrivals wait in line and evict no one.
  for (let i = 0; i < 10; i++) reopen();
  assert.equal(stranger.socket.destroyed, false, 'arrivals do not take its slot');
  guard.handshakeDone(stranger.conn!);
  assert.equal(guard.stats().pending <= 2, true);
  guard.close();
});

test('guard line: full, the newest of the circuit queueing the most goes; with none crowded, the newcomer', () => {
  const { guard, open } = setup({ connectionCostFrames: 4, maxQueuedConnections: 3, unprovenGlobalFrameBurst: 8 });
  const first = [open(), open()]; // the burst pays for both
  assert.ok(first.every((o) => o.proceeded));
  const c1 = open('circuit:1');
  const c2 = open('circuit:1');
  const lone = open('circuit:2');
  assert.equal(guard.stats().queued, 3);
  const late = open('circuit:3');
  assert.ok(c2.socket.destroyed, 'the crowded circuit lost its newest');
  assert.equal(c1.socket.destroyed || lone.socket.destroyed, false);
  assert.equal(guard.stats().cut['line-full'], 1);
  const another = open('circuit:4');
  assert.ok(another.socket.destroyed, 'no circuit crowded: the newcomer is refused');
  assert.equal(late.socket.destroyed, false);
  guard.close();
});

test('guard line: an admitted connection\'s frames are paid before the next admission', () => {
  const { guard, open, ws, clock } = setup({ connectionCostFrames: 4, unprovenGlobalFrameBurst: 8 });
  const w = ws(); // 4 of the burst
  const x = open(); // the other 4
  const q = open();
  assert.ok(w.proceeded && x.proceeded);
  assert.equal(q.proceeded, false);
  guard.data(w.conn!, ping);
  assert.equal(w.frames().length, 0, 'the frame waits for the budget');
  clock.advance(100); // one token: the frame's, though the line was there first
  assert.deepEqual(w.frames(), ping);
  assert.equal(q.proceeded, false);
  clock.advance(400);
  assert.equal(q.proceeded, true);
  guard.close();
});

test('guard cooling: a circuit closed for misbehaviour is refused at admission, its other connections cut, a contact on another circuit untouched; refusals double up to the cap', () => {
  const { guard, open, ws, clock } = setup({ coolingMs: 1_000, maxCoolingMs: 4_000, unprovenGlobalFrameBurst: 1_000, unprovenGlobalFramesPerSecond: 1_000 });
  const contact = ws('circuit:2');
  guard.handshakeDone(contact.conn!);
  guard.setTrust(contact.conn!, 'contact');
  const bad = ws('circuit:1');
  const sibling = ws('circuit:1');
  guard.misbehaved(bad.conn!, 'protocol');
  guard.misbehaved(bad.conn!, 'websocket'); // the same connection reported twice: one offence
  assert.equal(bad.socket.destroyed, false, 'the offending connection is closed by whoever reported it (its REJECT goes out first)');
  assert.ok(sibling.socket.destroyed, 'the circuit\'s other connection is cut');
  bad.socket.destroy();
  guard.closed(bad.conn!); // as its 'close' event will
  // As the listener does it: accepted, then tor's PROXY line names the circuit, then admission.
  const socket = new PassThrough();
  const back = guard.accept(socket)!;
  guard.rescope(back, 'circuit:1', 50);
  let proceeded = false;
  guard.admitConnection(back, () => (proceeded = true));
  assert.ok(socket.destroyed && !proceeded, 'a new connection from the circuit is closed at admission');
  let st = guard.stats();
  assert.deepEqual([st.cut.cooling, st.cooling, st.offences.protocol, st.offences.websocket], [2, 1, 1, 0]);
  assert.equal(st.connections, 1, 'nothing of it holds a slot');
  assert.ok(open('circuit:3').proceeded, 'another circuit is admitted');
  guard.data(contact.conn!, ping);
  assert.deepEqual(contact.frames(), ping, 'the contact\'s frames still go through');
  assert.equal(contact.socket.destroyed, false);

  /** Offends once on `circuit:1` now; returns how long it is then refused (ms, to the nearest 250). */
  const offend = () => {
    const c = open('circuit:1');
    assert.ok(c.proceeded, 'admitted again once its refusal ended');
    guard.misbehaved(c.conn!, 'mailbox');
    c.socket.destroy();
    let ms = 0;
    for (; ms < 10_000; ms += 250) {
      const probe = open('circuit:1');
      probe.socket.destroy();
      if (probe.proceeded) break;
      clock.advance(250);
    }
    return ms;
  };
  clock.advance(1_000);
  assert.deepEqual([offend(), offend(), offend(), offend()], [2_000, 4_000, 4_000, 4_000], 'doubled on each offence while remembered, at most maxCoolingMs');
  // Quiet for maxCoolingMs after its last refusal: forgotten, the next offence is a first one.
  clock.advance(4_000);
  assert.equal(offend(), 1_000);
  st = guard.stats();
  assert.equal(st.offences.mailbox, 5);
  assert.equal(contact.socket.destroyed, false, 'a contact on another circuit was never touched');
  guard.close();
});

test('guard cooling: over its frame budget is an offence too; a connection\'s own scope (no PROXY line) is counted, never refused; remembered circuits are bounded', () => {
  const { guard, open, ws } = setup({ coolingMs: 60_000, maxCoolingScopes: 3, unprovenGlobalFrameBurst: 1_000, unprovenGlobalFramesPerSecond: 1_000 });
  const flood = ws('circuit:9');
  guard.data(flood.conn!, Buffer.concat(Array.from({ length: 6 }, () => ping)));
  assert.ok(flood.socket.destroyed);
  assert.deepEqual([guard.stats().cut.rate, guard.stats().offences.rate], [1, 1]);
  assert.equal(open('circuit:9').proceeded, false, 'the flooding circuit is refused');

  const loopback = ws();
  guard.misbehaved(loopback.conn!, 'protocol');
  assert.equal(guard.stats().offences.protocol, 1, 'counted');
  assert.equal(guard.stats().cooling, 1, 'but nothing more is refused');
  assert.ok(open().proceeded);

  for (const id of [10, 11, 12]) {
    const c = open(`circuit:${id}`);
    guard.misbehaved(c.conn!, 'http');
    c.socket.destroy();
  }
  assert.equal(guard.stats().cooling, 3, 'at most maxCoolingScopes remembered');
  assert.ok(open('circuit:9').proceeded, 'the least recently offending was forgotten first');
  assert.equal(open('circuit:12').proceeded, false);
  guard.close();
});
