/** The control client against a scripted fake control port on 127.0.0.1 (port 0), and the SAFECOOKIE vector. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  TorError, TorOperationError, TorSocketError, connectControl, safeCookieHashes, type BootstrapStatus, type ControlEvent, type HsDescEvent,
} from '../../src/tor/index.js';

test('SAFECOOKIE hashes match an independent HMAC-SHA256 (openssl dgst -hmac) vector', () => {
  const cookie = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
  const { serverHash, clientHash } = safeCookieHashes(cookie, Buffer.alloc(32, 0xaa), Buffer.alloc(32, 0x55));
  assert.equal(serverHash.toString('hex'), '5f7cb5569957c99373e329258545940f029af175da225f4a3125eebf30c24bba');
  assert.equal(clientHash.toString('hex'), '9f99f2c4b75c91123ca5c6c6e3f76a9ef7fbd9471053cbe34454a4269cc39f7c');
});

interface Fake {
  port: number;
  cookieFile: string;
  received: string[];
  sockets: net.Socket[];
  close(): Promise<void>;
}

/** A control port that speaks just enough: PROTOCOLINFO, AUTHCHALLENGE, AUTHENTICATE, GETINFO, SETEVENTS, ADD_ONION, DIE. */
async function fakeTor(opts: { methods?: string; lieAboutHash?: boolean } = {}): Promise<Fake> {
  const dir = await mkdtemp(join(tmpdir(), 'onionpost-fakectl-'));
  const cookie = Buffer.alloc(32, 7);
  const cookieFile = join(dir, 'control_auth_cookie');
  await writeFile(cookieFile, cookie);
  const received: string[] = [];
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    let buf = '';
    let expectClient: string | null = null;
    s.on('error', () => {});
    s.on('data', (d) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        received.push(line);
        const [cmd, ...args] = line.split(' ');
        if (cmd === 'PROTOCOLINFO') {
          s.write(`250-PROTOCOLINFO 1\r\n250-AUTH METHODS=${opts.methods ?? 'COOKIE,SAFECOOKIE'} COOKIEFILE="${cookieFile}"\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n`);
        } else if (cmd === 'AUTHCHALLENGE') {
          const clientNonce = Buffer.from(args[1]!, 'hex');
          const serverNonce = Buffer.alloc(32, 9);
          const msg = Buffer.concat([cookie, clientNonce, serverNonce]);
          const sh = createHmac('sha256', 'Tor safe cookie authentication server-to-controller hash').update(msg).digest();
          expectClient = createHmac('sha256', 'Tor safe cookie authentication controller-to-server hash').update(msg).digest('hex');
          if (opts.lieAboutHash) sh[0]! ^= 1;
          s.write(`250 AUTHCHALLENGE SERVERHASH=${sh.toString('hex').toUpperCase()} SERVERNONCE=${serverNonce.toString('hex').toUpperCase()}\r\n`);
        } else if (cmd === 'AUTHENTICATE') {
          const ok = expectClient ? args[0] === expectClient : args[0] === cookie.toString('hex') || (opts.methods === 'NULL' && !args[0]);
          s.write(ok ? '250 OK\r\n' : '515 Authentication failed: Wrong length on authentication cookie.\r\n');
        } else if (cmd === 'GETINFO') {
          // Answer slowly, with an event in between, so FIFO and event routing are exercised.
          setTimeout(() => {
            s.write('650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=50 TAG=loading_descriptors SUMMARY="Loading relay descriptors"\r\n');
            s.write(args.map((k) => (k === 'nope' ? '' : `250-${k}=value-of-${k}\r\n`)).join('') + (args.includes('nope') ? '552 Unrecognized key "nope"\r\n' : '250 OK\r\n'));
          }, 20);
        } else if (cmd === 'SETEVENTS') {
          s.write('250 OK\r\n650 HS_DESC UPLOADED abc UNKNOWN $AAAA~relay0\r\n');
        } else if (cmd === 'ADD_ONION') {
          s.write('250-ServiceID=pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd\r\n250 OK\r\n');
        } else if (cmd === 'DIE') {
          s.destroy();
        } else if (cmd === 'GARBAGE') {
          s.write('this is not a reply\r\n');
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    cookieFile,
    received,
    sockets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

test('SAFECOOKIE authentication, serialized commands, events, refusals', async () => {
  const fake = await fakeTor();
  const control = await connectControl({ port: fake.port });
  try {
    await control.authenticate();
    assert.match(fake.received[1]!, /^AUTHCHALLENGE SAFECOOKIE [0-9a-f]{64}$/);
    assert.match(fake.received[2]!, /^AUTHENTICATE [0-9a-f]{64}$/);
    const events: ControlEvent[] = [];
    const boots: BootstrapStatus[] = [];
    const descs: HsDescEvent[] = [];
    control.on('event', (e) => events.push(e));
    control.on('bootstrap', (b) => boots.push(b));
    control.on('hsDesc', (h) => descs.push(h));
    const before = fake.received.length;
    const [a, b] = await Promise.all([control.getInfo(['version']), control.getInfo(['net/listeners/socks', 'config-file'])]);
    assert.equal(a.get('version'), 'value-of-version');
    assert.equal(b.get('config-file'), 'value-of-config-file');
    assert.deepEqual(fake.received.slice(before), ['GETINFO version', 'GETINFO net/listeners/socks config-file']);
    assert.equal(boots.length, 2);
    assert.equal(boots[0]!.progress, 50);
    const refused = await control.getInfo(['nope']).catch((e: unknown) => e);
    assert.ok(refused instanceof TorOperationError);
    assert.equal(refused.status, 552);
    await control.addEvents(['HS_DESC']);
    await control.addEvents(['HS_DESC']);
    assert.equal(fake.received.filter((l) => l.startsWith('SETEVENTS')).length, 1, 'no SETEVENTS when the set is unchanged');
    assert.equal(descs[0]?.action, 'UPLOADED');
    assert.ok(events.some((e) => e.type === 'HS_DESC'));
    const { serviceId } = await control.addOnion({
      keyBlob: 'ED25519-V3:' + Buffer.alloc(64, 1).toString('base64'), ports: [{ virtPort: 80, target: '127.0.0.1:8080' }], pow: true, maxStreams: 10, maxStreamsCloseCircuit: true,
    });
    assert.equal(serviceId, 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd');
    assert.match(fake.received[fake.received.length - 1]!, /^ADD_ONION ED25519-V3:\S{88} Flags=DiscardPK,MaxStreamsCloseCircuit MaxStreams=10 PoWDefensesEnabled=1 Port=80,127\.0\.0\.1:8080$/);
    await assert.rejects(control.addOnion({ keyBlob: 'ED25519-V3:short', ports: [{ virtPort: 80, target: '127.0.0.1:1' }] }), (e: unknown) => e instanceof TorError && e.code === 'BAD_ARGUMENT');
    await assert.rejects(control.addOnion({ keyBlob: 'ED25519-V3:' + Buffer.alloc(64).toString('base64'), ports: [{ virtPort: 80, target: '10.0.0.1:80 Flags=Detach' }] }), (e: unknown) => e instanceof TorError && e.code === 'BAD_ARGUMENT');
    await assert.rejects(control.command('GETINFO x\r\nSIGNAL HALT'), (e: unknown) => e instanceof TorError && e.code === 'BAD_ARGUMENT');
  } finally {
    await control.close();
    await fake.close();
  }
});

test('a lying server hash is refused before we reveal anything', async () => {
  const fake = await fakeTor({ lieAboutHash: true });
  const control = await connectControl({ port: fake.port });
  try {
    await assert.rejects(control.authenticate(), (e: unknown) => e instanceof TorError && e.code === 'AUTH_FAILED');
    assert.ok(!fake.received.some((l) => l.startsWith('AUTHENTICATE')));
  } finally {
    await control.close();
    await fake.close();
  }
});

test('COOKIE and NULL fallbacks', async () => {
  for (const methods of ['COOKIE', 'NULL']) {
    const fake = await fakeTor({ methods });
    const control = await connectControl({ port: fake.port });
    try {
      await control.authenticate({ cookieFile: fake.cookieFile });
      assert.equal(fake.received[1], methods === 'COOKIE' ? `AUTHENTICATE ${Buffer.alloc(32, 7).toString('hex')}` : 'AUTHENTICATE');
    } finally {
      await control.close();
      await fake.close();
    }
  }
});

test('a dying socket rejects pending and queued commands with TorSocketError; close is idempotent', async () => {
  const fake = await fakeTor();
  const control = await connectControl({ port: fake.port });
  const closedWith: (Error | undefined)[] = [];
  control.on('close', (e) => closedWith.push(e));
  const pending = [control.command('DIE'), control.getInfo(['version']), control.getInfo(['version'])];
  for (const p of pending) await assert.rejects(p, (e: unknown) => e instanceof TorSocketError && e.code === 'CONNECTION_CLOSED');
  assert.ok(control.closed);
  assert.ok(closedWith.length === 1 && closedWith[0] instanceof TorSocketError);
  await assert.rejects(control.getInfo(['version']), TorSocketError);
  const c1 = control.close();
  assert.equal(control.close(), c1);
  await c1;
  await fake.close();
});

test('a malformed reply destroys the connection with TorProtocolError', async () => {
  const fake = await fakeTor();
  const control = await connectControl({ port: fake.port });
  await assert.rejects(control.command('GARBAGE'), (e: unknown) => (e as Error).name === 'TorProtocolError');
  assert.ok(control.closed);
  await control.close();
  await fake.close();
});

test('connect: refused port, abort', async () => {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  await assert.rejects(connectControl({ port }), (e: unknown) => e instanceof TorSocketError && e.code === 'CONNECT_FAILED');
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(connectControl({ port, signal: ac.signal }), (e: unknown) => e instanceof TorSocketError && e.code === 'ABORTED');
});
