import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import type { OnionpostNode } from '../../src/node/index.js';
import { generateIdentity } from '../../src/crypto/index.js';
import { isLoopback } from '../../src/bridge/auth.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';
import { BRIDGE_PASSWORD, bridgedNode, imapClient, settings, smtpTransport } from '../fixtures/bridge.js';

let t: TestNodes;
let alice: OnionpostNode;
let bob: OnionpostNode;

before(async () => {
  t = await testNodes('onionpost-bridge-abuse-');
  alice = await bridgedNode(t, 'alice');
  bob = await bridgedNode(t, 'bob');
  await eventually(() => alice.reachable && bob.reachable, 10_000, 'self-checks');
});
after(() => t.cleanup());

/** A raw line client: sends `lines` one by one after each reply, returns every line read until close or `untilLines`. */
async function talk(port: number, script: (string | Buffer)[], opts: { waitClose?: boolean; timeoutMs?: number } = {}): Promise<{ lines: string[]; closed: boolean }> {
  const s: Socket = connect({ host: '127.0.0.1', port });
  const lines: string[] = [];
  let buf = '';
  let closed = false;
  s.on('data', (d) => {
    buf += d.toString('latin1');
    const parts = buf.split('\r\n');
    buf = parts.pop()!;
    lines.push(...parts);
  });
  const done = new Promise<void>((resolve) => s.on('close', () => ((closed = true), resolve())));
  s.on('error', () => {});
  await new Promise((r) => s.once('connect', r));
  const waitLines = async (n: number) => {
    const end = Date.now() + (opts.timeoutMs ?? 5_000);
    while (lines.length < n && !closed && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  };
  await waitLines(1);
  for (const l of script) {
    const before = lines.length;
    s.write(l);
    await waitLines(before + 1);
  }
  if (opts.waitClose) await Promise.race([done, new Promise((r) => setTimeout(r, opts.timeoutMs ?? 5_000))]);
  s.destroy();
  return { lines, closed };
}

const outCount = (n: OnionpostNode) => n.store.listMessages({ direction: 'out', limit: 1000 }).length;

test('SMTP: wrong password and no authentication are refused; nothing is queued', async () => {
  const before = outCount(alice);
  await assert.rejects(smtpTransport(alice, { user: settings(alice).user, pass: 'wrong password!!' }).sendMail({ from: settings(alice).user, to: settings(bob).user, text: 'x' }), (err: { code?: string; responseCode?: number }) => {
    assert.equal(err.code, 'EAUTH');
    assert.equal(err.responseCode, 535);
    return true;
  });
  const r = await talk(settings(alice).smtp.port, ['EHLO test\r\n', `MAIL FROM:<${settings(alice).user}>\r\n`]);
  assert.ok(r.lines.some((l) => /^530 /.test(l)), `530 without AUTH: ${r.lines.join(' | ')}`);
  // Three wrong passwords close the connection.
  const bad = Buffer.from(`\0${settings(alice).user}\0nope`).toString('base64');
  const three = await talk(settings(alice).smtp.port, ['EHLO t\r\n', `AUTH PLAIN ${bad}\r\n`, `AUTH PLAIN ${bad}\r\n`, `AUTH PLAIN ${bad}\r\n`], { waitClose: true });
  assert.ok(three.closed, 'closed after three failures');
  assert.equal(outCount(alice), before);
});

test('SMTP: recipients outside the scheme, unknown names, bad onion checksums and oneself are refused at RCPT with a clear reply', async () => {
  const before = outCount(alice);
  const badOnion = bob.identity.onion.replace(/^./, (c) => (c === 'a' ? 'b' : 'a'));
  const cases: [string, RegExp][] = [
    ['bob@example.com', /not an onionpost address/],
    ['nobody@onionpost.onion', /no registry/],
    [`mail@${badOnion}`, /checksum|onion/i],
    [settings(alice).user, /your own address/],
  ];
  for (const [to, why] of cases) {
    await assert.rejects(smtpTransport(alice).sendMail({ from: settings(alice).user, to, text: 'x' }), (err: { code?: string; rejected?: string[]; rejectedErrors?: { response: string; responseCode: number }[] }) => {
      assert.equal(err.code, 'EENVELOPE', to);
      const e = err.rejectedErrors![0]!;
      assert.equal(e.responseCode, 550, to);
      assert.match(e.response, why, to);
      return true;
    });
  }
  assert.equal(outCount(alice), before, 'nothing queued');
});

test('SMTP: an oversized message (over SIZE, and over what an onionpost message carries) and malformed MIME are refused; nothing is queued', async () => {
  const before = outCount(alice);
  const send = (bytes: number) => smtpTransport(alice).sendMail({ from: settings(alice).user, to: settings(bob).user, subject: 'big', text: 'x', attachments: [{ filename: 'big.bin', content: Buffer.alloc(bytes, 7) }] });
  for (const n of [700_000, 300_000]) {
    await assert.rejects(send(n), (err: { responseCode?: number; response?: string }) => {
      assert.equal(err.responseCode, 552, `${n}: ${err.response}`);
      return true;
    });
  }
  const auth = Buffer.from(`\0${settings(alice).user}\0${BRIDGE_PASSWORD}`).toString('base64');
  const junk = await talk(settings(alice).smtp.port, [
    'EHLO t\r\n', `AUTH PLAIN ${auth}\r\n`, `MAIL FROM:<${settings(alice).user}>\r\n`, `RCPT TO:<${settings(bob).user}>\r\n`, 'DATA\r\n',
    Buffer.concat([Buffer.from([0, 1, 2, 0xff, 0xfe]), Buffer.from('\r\nno headers here\r\n.\r\n')]),
  ]);
  assert.ok(junk.lines.some((l) => /^554 .*header/.test(l)), junk.lines.join(' | '));
  assert.equal(outCount(alice), before);
  const ok = await smtpTransport(alice).sendMail({ from: settings(alice).user, to: settings(bob).user, subject: 'after abuse', text: 'still here' });
  assert.match(ok.response, /^250 /, 'the node keeps serving');
});

test('SMTP: a flood of commands before login is cut off (421)', async () => {
  const flood = Array.from({ length: 30 }, () => 'NOOP\r\n');
  const r = await talk(settings(alice).smtp.port, ['EHLO t\r\n', ...flood], { waitClose: true });
  assert.ok(r.lines.some((l) => /^421 .*unauthenticated/.test(l)), r.lines.slice(-3).join(' | '));
  assert.ok(r.closed);
});

test('IMAP: wrong password, commands before login, a command flood and an oversized literal end the connection; the node keeps serving', async () => {
  await assert.rejects(imapClient(alice, 'not the password'), (err: { authenticationFailed?: boolean }) => {
    assert.equal(err.authenticationFailed, true);
    return true;
  });
  const port = settings(alice).imap.port;
  const pre = await talk(port, [Array.from({ length: 50 }, (_, i) => `a${i} NOOP\r\n`).join('')], { waitClose: true });
  assert.ok(pre.closed && pre.lines.some((l) => /^\* BYE .*without logging in/.test(l)), pre.lines.slice(-2).join(' | '));
  const login = `l LOGIN ${settings(alice).user} "${BRIDGE_PASSWORD}"\r\n`;
  const flood = await talk(port, [login, Array.from({ length: 3000 }, (_, i) => `f${i} NOOP\r\n`).join('')], { waitClose: true, timeoutMs: 10_000 });
  assert.ok(flood.closed && flood.lines.some((l) => /^\* BYE too many commands/.test(l)), flood.lines.slice(-2).join(' | '));
  const big = await talk(port, [login, 'x APPEND Sent {99999999+}\r\n'], { waitClose: true });
  assert.ok(big.closed && big.lines.some((l) => /^x BAD literal too large/.test(l)), big.lines.join(' | '));
  const garbage = await talk(port, [login, 'x FETCH 1:* (BODY[\r\n', 'y BOGUS\r\n', 'z LOGOUT\r\n'], { waitClose: true });
  assert.deepEqual(garbage.lines.filter((l) => /^[xyz] /.test(l)).map((l) => l.split(' ').slice(0, 2).join(' ')), ['x BAD', 'y BAD', 'z OK']);
  const c = await imapClient(alice);
  const st = await c.status('INBOX', { messages: true });
  assert.ok(st && typeof st.messages === 'number', 'a normal client still gets served');
  await c.logout();
  const s = await alice.send({ to: bob.identity.onion, subject: 'still delivering', body: 'x', wait: true });
  assert.equal(s.state, 'delivered');
});

test('a connection from a non-loopback address is refused (the check behind the 127.0.0.1 bind)', () => {
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopback(a), true, a);
  for (const a of ['192.0.2.2', '10.0.0.1', '::ffff:192.0.2.2', 'fd00::2', '0.0.0.0', '', undefined]) assert.equal(isLoopback(a), false, String(a));
  void generateIdentity;
});
