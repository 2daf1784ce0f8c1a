import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { compileRegistry, serializeArtifact, sourceHash } from '../../src/contract/compile.js';
import { ARTIFACT_PATH, SOURCE_PATH, loadRegistryArtifact } from '../../src/contract/artifact.js';

test('the checked-in artifact is what the checked-in source compiles to (rebuild: node dist/src/contract/compile.js)', () => {
  const source = readFileSync(SOURCE_PATH, 'utf8');
  const checkedIn = loadRegistryArtifact();
  assert.equal(checkedIn.sourceHash, sourceHash(source), 'IdentityRegistry.sol changed since the artifact was built');
  const fresh = compileRegistry(source);
  assert.equal(fresh.evmVersion, 'cancun');
  assert.equal(checkedIn.evmVersion, 'cancun');
  assert.equal(checkedIn.solcVersion, fresh.solcVersion);
  assert.deepEqual(checkedIn.abi, fresh.abi);
  assert.equal(checkedIn.bytecode, fresh.bytecode);
  assert.equal(readFileSync(ARTIFACT_PATH, 'utf8'), serializeArtifact(fresh));
});

test('the ABI is flat: no tuple types anywhere (TRON getcontract ABIs cannot carry components)', () => {
  const { abi } = loadRegistryArtifact();
  const types = JSON.stringify(abi).match(/"type":"[^"]*"/g) ?? [];
  assert.ok(types.length > 0);
  for (const t of types) assert.doesNotMatch(t, /tuple/);
  const names = new Set(abi.map((e) => (e as { name?: string }).name));
  for (const f of ['commit', 'register', 'update', 'transfer', 'release', 'lookup', 'lookupByOwner', 'chainId', 'Registered', 'Updated', 'Transferred', 'Released']) {
    assert.ok(names.has(f), `ABI lacks ${f}`);
  }
});
