/**
 * The Tor layer against real tor on the private network (started once per run by
 * test/fixtures/global.ts): launch, bootstrap progress, ADD_ONION with our own key, HS_DESC
 * UPLOADED, reaching the onion from a second tor through socksConnect and TorSocksAgent, typed SOCKS
 * errors, Tor's refusals, start-failure cleanup, crash detection, and no tor left behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SocksError, TorError, TorOperationError, TorSocksAgent, launchTor, publishOnion, socksConnect,
} from '../../src/tor/index.js';
import { createLogger } from '../../src/log.js';
import { retryUntil, testNetworkFromEnv, withTor } from '../fixtures/tor.js';

/** The research recipe: h = SHA-512(seed), clamped; blob = base64 of all 64 bytes. */
function keyBlob(seed: Buffer): string {
  const h = createHash('sha512').update(seed).digest();
  h[0]! &= 248;
  h[31]! &= 127;
  h[31]! |= 64;
  return 'ED25519-V3:' + h.toString('base64');
}

function base32(bytes: Buffer): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

function serviceIdOf(seed: Buffer): string {
  const priv = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
  const pub = createPublicKey(priv).export({ format: 'der', type: 'spki' }).subarray(-32);
  const checksum = createHash('sha3-256').update(Buffer.concat([Buffer.from('.onion checksum'), pub, Buffer.from([3])])).digest().subarray(0, 2);
  return base32(Buffer.concat([pub, checksum, Buffer.from([3])]));
}

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^\S+ \S+ Z/.test(safeRead(`/proc/${pid}/stat`));
function safeRead(p: string): string {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

const pids: number[] = [];

test('two node tors on the private network: publish, reach, errors, crash', async (t) => {
  let started = Date.now();
  const progress: number[] = [];
  let logged = '';
  const logger = createLogger({ level: 'trace', destination: { write: (line: string) => void (logged += line) } });
  const a = await withTor(t, { onProgress: (p) => progress.push(p.progress), logger });
  t.diagnostic(`tor A bootstrapped in ${Date.now() - started} ms (progress reports: ${progress.join(',')})`);
  started = Date.now();
  const b = await withTor(t);
  t.diagnostic(`tor B bootstrapped in ${Date.now() - started} ms`);
  pids.push(a.pid, b.pid);

  await t.test('bootstrap progress is reported up to 100', () => {
    assert.ok(progress.length >= 1);
    assert.equal(progress[progress.length - 1], 100);
    // Tor's own reports are not monotonic (seen here: 14,10,15,…,100, a cached-state report first),
    // so only the range and the final 100 are promised.
    for (const p of progress) assert.ok(p >= 0 && p <= 100, `progress ${p} within 0..100`);
    assert.ok(a.socksPort > 0 && a.controlPort > 0 && a.socksPort !== b.socksPort);
    assert.equal(a.features.pow, true, 'tor 0.4.9.11 supports PoW');
  });

  const server = http.createServer((req, res) => res.end(`hello ${req.url}`));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as AddressInfo).port;
  const seed = randomBytes(32);
  const expected = serviceIdOf(seed);

  let serviceId = '';
  await t.test('ADD_ONION with our key returns the derived ServiceID, and HS_DESC UPLOADED follows', async () => {
    const t0 = Date.now();
    const pub = await publishOnion(a.control, { keyBlob: keyBlob(seed), target: `127.0.0.1:${port}`, pow: a.features.pow, expectedServiceId: expected + '.onion', uploadTimeoutMs: 30_000 });
    serviceId = pub.serviceId;
    assert.equal(serviceId, expected);
    await pub.uploaded;
    t.diagnostic(`ADD_ONION → first HS_DESC UPLOADED: ${Date.now() - t0} ms`);
  });

  await t.test('the other tor reaches the onion through socksConnect (bounded retry)', async () => {
    const t0 = Date.now();
    const { value: sock, attempts, errors } = await retryUntil(
      () => socksConnect({ socksPort: b.socksPort, host: `${serviceId}.onion`, port: 80, isolation: 'peer-a', timeoutMs: 20_000 }),
      { deadlineMs: 30_000, pauseMs: 1000 },
    );
    t.diagnostic(`reachable after ${Date.now() - t0} ms, ${attempts} attempt(s); earlier errors: ${errors.map((e) => (e as SocksError).code).join(',') || 'none'}`);
    for (const e of errors) assert.ok(e instanceof SocksError, `retry errors are SocksErrors, got ${String(e)}`);
    const body = await new Promise<string>((resolve, reject) => {
      let data = '';
      sock.on('data', (d: Buffer) => (data += d.toString()));
      sock.on('end', () => resolve(data));
      sock.on('error', reject);
      sock.write('GET /raw HTTP/1.0\r\nHost: x\r\n\r\n');
    });
    assert.match(body, /hello \/raw$/);
  });

  await t.test('TorSocksAgent carries an http request to the onion', async () => {
    const agent = new TorSocksAgent({ socksPort: b.socksPort, connectTimeoutMs: 20_000 });
    const t0 = Date.now();
    const body = await new Promise<string>((resolve, reject) => {
      http.get({ host: `${serviceId}.onion`, port: 80, path: '/agent', agent }, (res) => {
        let data = '';
        res.on('data', (d: Buffer) => (data += d.toString()));
        res.on('end', () => resolve(data));
      }).on('error', reject);
    });
    agent.destroy();
    assert.equal(body, 'hello /agent');
    t.diagnostic(`agent request (new isolation, new circuit): ${Date.now() - t0} ms`);
  });

  await t.test('an unpublished onion yields a typed SocksError', async () => {
    const other = serviceIdOf(randomBytes(32));
    const err = await socksConnect({ socksPort: b.socksPort, host: `${other}.onion`, port: 80, timeoutMs: 30_000 }).then(
      () => assert.fail('connected to an onion nobody published'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SocksError);
    assert.ok(['ONION_DESC_NOT_FOUND', 'GENERAL_FAILURE'].includes(err.code), err.code);
    assert.notEqual(err.retry, 'never');
    const bad = await socksConnect({ socksPort: b.socksPort, host: 'abcdef.onion', port: 80, timeoutMs: 10_000 }).catch((e: unknown) => e);
    assert.ok(bad instanceof SocksError);
    assert.equal(bad.code, 'ONION_BAD_ADDRESS');
    assert.equal(bad.replyCode, 0xf6);
    assert.equal(bad.retry, 'never');
  });

  await t.test('tor refusals are TorOperationErrors; a wrong expected ServiceID is ONION_MISMATCH', async () => {
    const dup = await a.control.addOnion({ keyBlob: keyBlob(seed), ports: [{ virtPort: 80, target: `127.0.0.1:${port}` }] }).catch((e: unknown) => e);
    assert.ok(dup instanceof TorOperationError);
    assert.equal(dup.status, 550);
    const seed2 = randomBytes(32);
    const mismatch = await publishOnion(a.control, { keyBlob: keyBlob(seed2), target: `127.0.0.1:${port}`, expectedServiceId: expected }).catch((e: unknown) => e);
    assert.ok(mismatch instanceof TorError);
    assert.equal(mismatch.code, 'ONION_MISMATCH');
    const onions = await a.control.getInfo(['onions/current']);
    assert.ok(!(onions.get('onions/current') ?? '').includes(serviceIdOf(seed2)), 'the mismatched onion was removed');
    const info = await a.control.getInfo(['version', 'status/bootstrap-phase']);
    assert.match(info.get('version') ?? '', /^0\.4\./);
  });

  await t.test('neither the control cookie nor the onion key reaches the logs', () => {
    assert.ok(logged.includes('tor bootstrapped'), 'the logger was used');
    const cookie = fs.readFileSync(join(a.torDir, 'control_auth_cookie'));
    assert.ok(!logged.toLowerCase().includes(cookie.toString('hex')));
    assert.ok(!logged.includes(keyBlob(seed).slice('ED25519-V3:'.length, 40)));
  });

  await t.test('SIGKILL of a tor is observed through `exited` within a second', async () => {
    const t0 = Date.now();
    b.kill('SIGKILL');
    const exit = await Promise.race([b.exited, new Promise<null>((r) => setTimeout(() => r(null), 1000))]);
    assert.ok(exit, 'exited resolved within 1 s');
    assert.equal(exit.signal, 'SIGKILL');
    assert.ok(b.hasExited);
    t.diagnostic(`exit observed after ${Date.now() - t0} ms`);
    assert.ok(b.control.closed);
  });
});

test('start failures kill the child: a bad torrc exits, an unreachable network times out', async () => {
  const network = await testNetworkFromEnv();
  const dataDir = await mkdtemp(join(tmpdir(), 'onionpost-tor-bad-'));
  try {
    const bad = await launchTor({ dataDir, network, extraTorrc: ['NoSuchTorOption 1'] }).catch((e: unknown) => e);
    assert.ok(bad instanceof TorError);
    assert.equal(bad.code, 'TOR_EXITED');
    assert.equal(findPid(dataDir), 0, 'no tor of this data dir remains');
    const dead = { dirAuthorities: network.dirAuthorities.map((l) => l.replace(/orport=\d+/, 'orport=1').replace(/127\.0\.0\.1:\d+/, '127.0.0.1:2')) };
    const t0 = Date.now();
    const slow = await launchTor({ dataDir, network: dead, bootstrapTimeoutMs: 3000 }).catch((e: unknown) => e);
    assert.ok(slow instanceof TorError);
    assert.equal(slow.code, 'BOOTSTRAP_TIMEOUT');
    assert.ok(Date.now() - t0 < 10_000);
    assert.equal(findPid(dataDir), 0, 'the tor that failed to bootstrap was killed');
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

/** The pid of a tor whose command line mentions dir (while it runs). */
function findPid(dir: string): number {
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const cmd = safeRead(`/proc/${e}/cmdline`);
    if (cmd.includes(dir) && cmd.split('\0')[0]?.endsWith('tor')) return Number(e);
  }
  return 0;
}

test('no node tor of ours remains', () => {
  assert.ok(pids.length >= 2);
  for (const pid of pids) assert.ok(!alive(pid), `tor ${pid} still running`);
});
