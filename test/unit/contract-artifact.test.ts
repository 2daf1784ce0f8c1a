import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { compileContract, serializeArtifact, sourceHash } from '../../src/contract/compile.js';
import { CONTRACT_NAMES, artifactPath, loadArtifact, loadRegistryArtifact, sourcePath } from '../../src/contract/artifact.js';

for (const name of CONTRACT_NAMES) {
  test(`the checked-in ${name} artifact is what its checked-in source compiles to (rebuild: node dist/src/contract/compile.js)`, () => {
    const source = readFileSync(sourcePath(name), 'utf8');
    const checkedIn = loadArtifact(name);
    assert.equal(checkedIn.sourceHash, sourceHash(source), `${name}.sol changed since the artifact was built`);
    const fresh = compileContract(name, source);
    assert.equal(fresh.evmVersion, 'cancun');
    assert.equal(checkedIn.evmVersion, 'cancun');
    assert.equal(checkedIn.solcVersion, fresh.solcVersion);
    assert.deepEqual(checkedIn.abi, fresh.abi);
    assert.equal(checkedIn.bytecode, fresh.bytecode);
    assert.equal(readFileSync(artifactPath(name), 'utf8'), serializeArtifact(fresh));
    const types = JSON.stringify(checkedIn.abi).match(/"type":"[^"]*"/g) ?? [];
    for (const t of types) assert.doesNotMatch(t, /tuple/, `${name}'s ABI must be flat`);
  });
}

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
