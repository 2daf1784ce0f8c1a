/**
 * Cooling (issue 12 item 4), through a whole node whose listener reads tor's PROXY line (the loopback
 * network with circuit ids, as tor brings it): a circuit whose connection is closed for misbehaviour
 * is refused at admission on its next connections, while a contact on another circuit keeps
 * delivering and a circuit never seen before is admitted. Each kind the node reports: garbage
 * protocol frames (the node, from PeerConnection), broken WebSocket framing and a request that is
 * not HTTP (the listener).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { GuardStats } from '../../src/transport/index.js';
import { proxyLine, rawUpgrade, runAttack, wsFrame } from '../fixtures/attacks.js';
import { circuitNetwork, eventually, testNodes } from '../fixtures/nodes.js';

test('a circuit that sends garbage is refused on its next connections while a contact on another circuit is served', async (t) => {
  const nodes = await testNodes('onionpost-cooling-');
  t.after(() => nodes.cleanup());
  const dir = join(nodes.root, 'loopback');
  const victim = await nodes.make('victim', { network: circuitNetwork(dir, 1) });
  const sender = await nodes.make('sender', { network: circuitNetwork(dir, 2) });
  await victim.handlers['contacts.add']!({ alias: 'sender', address: sender.identity.onion });
  const send = async (subject: string) => {
    const r = await sender.send({ to: victim.identity.onion, subject, body: 'hi', wait: true, waitMs: 20_000 });
    assert.equal(r.state, 'delivered', `${subject}: ${r.state} ${r.reason ?? ''}`);
  };
  await send('before');
  const port = victim.status().listener!.port;
  const guard = () => victim.status().inbound.connections as GuardStats;

  // Garbage frames from circuit 7, as fast as it can, reconnecting whenever closed (over its frame
  // budget first: the guard's own cut), while the contact sends.
  const controller = new AbortController();
  const attack = runAttack('garbage', { port, circuit: 7 }, { signal: controller.signal, connections: 4 });
  try {
    await eventually(() => guard().offences.rate > 0, 10_000, 'the flood counted as misbehaviour');
    await send('during');
    await eventually(() => guard().cut.cooling >= 20, 10_000, 'reconnects refused');
  } finally {
    controller.abort();
  }
  const a = await attack;
  assert.ok(a.opened > 5 * a.upgraded, `most of the circuit's ${a.opened} connections never got an HTTP answer (${a.upgraded} upgraded)`);
  const again = await rawUpgrade({ port, circuit: 7 });
  assert.equal(again.socket, null, 'its next connection is closed');
  assert.equal(again.status, '', 'at admission, before its request was read');
  assert.ok((await rawUpgrade({ port, circuit: 8 })).socket, 'a circuit never seen is admitted');

  // One of each other kind: a frame that does not decode (the node, from PeerConnection), broken
  // WebSocket framing (a reserved opcode; the listener), bytes that are not HTTP (the listener).
  const frame = await rawUpgrade({ port, circuit: 9 });
  frame.socket!.resume();
  frame.socket!.write(wsFrame(0x2, Buffer.alloc(16, 0xff)));
  await eventually(() => guard().offences.protocol === 1, 10_000, 'the undecodable frame counted');
  const ws = await rawUpgrade({ port, circuit: 10 });
  ws.socket!.resume();
  ws.socket!.write(wsFrame(0x3, Buffer.from('x')));
  await eventually(() => guard().offences.websocket === 1, 10_000, 'the framing counted');
  const http = connect(port, '127.0.0.1');
  http.on('error', () => {});
  http.resume();
  http.write(`${proxyLine(11)}\x00\x01 not http\r\n\r\n`);
  await eventually(() => guard().offences.http === 1, 10_000, 'the bad request counted');
  http.destroy();
  for (const circuit of [9, 10, 11]) assert.equal((await rawUpgrade({ port, circuit })).status, '', `circuit ${circuit} is refused`);
  assert.equal(guard().cooling, 4, 'four circuits refused');

  await send('after');
});
