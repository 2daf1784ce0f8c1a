import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ContractError, DEFAULT_DEPLOYMENTS_PATH, decodeRevertReason, getDeployment, isValidRegistryName, readDeployments,
  registryCommitment, writeDeployment,
} from '../../src/contract/index.js';

test('decodeRevertReason reads Error(string) and refuses anything else', () => {
  // Error("NAME_TAKEN") as solc encodes it.
  const data = '08c379a0' + '20'.padStart(64, '0') + 'a'.padStart(64, '0') + Buffer.from('NAME_TAKEN').toString('hex').padEnd(64, '0');
  assert.equal(decodeRevertReason(data), 'NAME_TAKEN');
  assert.equal(decodeRevertReason('0x' + data), 'NAME_TAKEN');
  assert.equal(decodeRevertReason(''), undefined);
  assert.equal(decodeRevertReason(undefined), undefined);
  assert.equal(decodeRevertReason('4e487b71' + '1'.padStart(64, '0')), undefined); // Panic(1)
  assert.equal(decodeRevertReason('08c379a0' + 'ff'), undefined);
});

test('registryCommitment is keccak256(name ++ owner20 ++ secret) and accepts both address forms', () => {
  const secret = new Uint8Array(32).fill(7);
  const a = registryCommitment('alice', '41' + 'ab'.repeat(20), secret);
  const b = registryCommitment('alice', '0x' + 'ab'.repeat(20), secret);
  assert.equal(a, b);
  assert.match(a, /^0x[0-9a-f]{64}$/);
  assert.notEqual(registryCommitment('alicf', '0x' + 'ab'.repeat(20), secret), a);
  assert.throws(() => registryCommitment('alice', '0x1234', secret), RangeError);
  assert.throws(() => registryCommitment('alice', '0x' + 'ab'.repeat(20), new Uint8Array(31)), RangeError);
});

test('isValidRegistryName matches the contract rule', () => {
  for (const ok of ['a', 'alice', 'a-b', '0', 'x'.repeat(64), 'a1-2b']) assert.equal(isValidRegistryName(ok), true, ok);
  for (const bad of ['', '-a', 'a-', 'Alice', 'a_b', 'a.b', 'x'.repeat(65), 'é', ' a']) assert.equal(isValidRegistryName(bad), false, bad);
});

test('deployments file: missing is empty, writes merge atomically, malformed is a typed error, dev stays out of the repo file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'onionpost-deployments-'));
  try {
    const path = join(dir, 'sub', 'deployments.json');
    assert.deepEqual(readDeployments(path), {});
    const d = { address: 'TXYZ', txId: 'ab'.repeat(32), deployedAt: '2026-01-01T00:00:00.000Z', fullHost: 'http://127.0.0.1:9090' };
    writeDeployment('dev', d, path);
    writeDeployment('nile', { ...d, fullHost: 'https://nile.trongrid.io' }, path);
    assert.deepEqual(getDeployment('dev', path), d);
    assert.equal(getDeployment('nile', path)?.fullHost, 'https://nile.trongrid.io');
    assert.equal(getDeployment('mainnet', path), undefined);
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(path, 'utf8')) as object).sort(), ['dev', 'nile']);
    writeFileSync(path, '{"dev": {"address": 1}}');
    assert.throws(() => readDeployments(path), (e: unknown) => e instanceof ContractError && e.code === 'DEPLOYMENTS_FILE');
    assert.throws(() => writeDeployment('dev', d), (e: unknown) => e instanceof ContractError && e.code === 'DEPLOYMENTS_FILE');
    assert.deepEqual(readDeployments(DEFAULT_DEPLOYMENTS_PATH), readDeployments(DEFAULT_DEPLOYMENTS_PATH)); // checked-in file parses
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
