import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KDF_FAST, cryptoReady, generateIdentity, openKeyFile, readKeyFile, readPublicIdentity, writeKeyFile } from '../../src/crypto/index.js';
import { cryptoCodeOf } from '../fixtures/codes.js';

const root = mkdtempSync(join(tmpdir(), 'onionpost-keyfile-'));
before(cryptoReady);
after(() => rmSync(root, { recursive: true, force: true }));

const codeOf = cryptoCodeOf;

test('key file: 0600 in a 0700 dir, round trip, public part readable without passphrase', () => {
  const dir = join(root, 'a', 'data');
  const path = join(dir, 'identity.json');
  const id = generateIdentity();
  writeKeyFile(path, id, 'correct horse', { strength: KDF_FAST });
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  const back = readKeyFile(path, 'correct horse');
  assert.deepEqual(back.seed, id.seed);
  assert.deepEqual(back.encryptionSecret, id.encryptionSecret);
  assert.equal(back.onion, id.onion);
  const pub = readPublicIdentity(path);
  assert.equal(pub.onion, id.onion);
  assert.deepEqual(pub.identityKey, id.identityKey);
});

test('key file errors: wrong passphrase, missing, exists, loose permissions, corrupt, swapped public keys', () => {
  const path = join(root, 'b', 'identity.json');
  const id = generateIdentity();
  writeKeyFile(path, id, 'pw', { strength: KDF_FAST });
  assert.equal(codeOf(() => readKeyFile(path, 'wrong')), 'WRONG_PASSPHRASE');
  assert.equal(codeOf(() => readKeyFile(join(root, 'nope', 'identity.json'), 'pw')), 'KEYFILE_MISSING');
  assert.equal(codeOf(() => writeKeyFile(path, generateIdentity(), 'pw', { strength: KDF_FAST })), 'KEYFILE_EXISTS');
  chmodSync(path, 0o644);
  assert.equal(codeOf(() => readKeyFile(path, 'pw')), 'KEYFILE_PERMISSIONS');
  chmodSync(path, 0o600);
  const corrupt = join(root, 'b', 'corrupt.json');
  writeFileSync(corrupt, '{not json', { mode: 0o600 });
  assert.equal(codeOf(() => readKeyFile(corrupt, 'pw')), 'KEYFILE_CORRUPT');
  // someone edits the clear-text public keys to point contacts elsewhere: unlocking notices
  const swapped = join(root, 'b', 'swapped.json');
  writeKeyFile(swapped, id, 'pw', { strength: KDF_FAST });
  const other = generateIdentity();
  const j = JSON.parse(readFileSync(swapped, 'utf8'));
  j.identityKey = Buffer.from(other.identityKey).toString('hex');
  writeFileSync(swapped, JSON.stringify(j), { mode: 0o600 });
  assert.equal(codeOf(() => readKeyFile(swapped, 'pw')), 'KEYFILE_CORRUPT');
});

test('openKeyFile derives the key in a worker and opens what readKeyFile opens; a wrong passphrase is WRONG_PASSPHRASE', async () => {
  const path = join(root, 'worker', 'identity.json');
  const id = generateIdentity();
  writeKeyFile(path, id, 'correct horse', { strength: KDF_FAST });
  const opened = await openKeyFile(path, 'correct horse');
  assert.equal(opened.onion, id.onion);
  assert.deepEqual(opened.seed, id.seed);
  assert.deepEqual(opened.encryptionSecret, id.encryptionSecret);
  await assert.rejects(openKeyFile(path, 'wrong horse'), { code: 'WRONG_PASSPHRASE' });
  await assert.rejects(openKeyFile(join(root, 'nobody.json'), 'x'), { code: 'KEYFILE_MISSING' });
});
