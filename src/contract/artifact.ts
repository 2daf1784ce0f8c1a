/**
 * The checked-in compiled registry (deploy/artifacts/IdentityRegistry.json), loaded at run time.
 * Paths are resolved from this module's location, so it works both from src/ (ts) and dist/src/ (js).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ContractError } from './errors.js';

export const CONTRACT_NAME = 'IdentityRegistry';

/** The repository root, from this module's location (src/contract or dist/src/contract). */
export function repoRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/contract -> ../.. ; dist/src/contract -> ../../..
  const parts = here.split(/[\\/]/);
  const distAt = parts.lastIndexOf('dist');
  return distAt >= 0 ? parts.slice(0, distAt).join('/') || '/' : join(here, '..', '..');
}

export const SOURCE_PATH = join(repoRoot(), 'deploy', 'contracts', `${CONTRACT_NAME}.sol`);
export const ARTIFACT_PATH = join(repoRoot(), 'deploy', 'artifacts', `${CONTRACT_NAME}.json`);

/**
 * The artifact file. `abi` is solc's JSON ABI (flat: no tuples); `bytecode` is the creation code as
 * hex without 0x (constructor arguments `(uint256 minCommitmentAge, uint256 maxCommitmentAge)` are
 * appended by the deployer); `sourceHash` is sha256 of the .sol text it was built from.
 */
export interface RegistryArtifact {
  contractName: string;
  abi: unknown[];
  bytecode: string;
  solcVersion: string;
  evmVersion: string;
  sourceHash: string;
}

/** Reads and shape-checks the artifact. Throws ContractError('ARTIFACT') if missing or malformed. */
export function loadRegistryArtifact(path: string = ARTIFACT_PATH): RegistryArtifact {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ContractError('ARTIFACT', `cannot read ${path}`, { cause: err });
  }
  const a = parsed as Partial<RegistryArtifact>;
  if (
    !a || typeof a !== 'object' || !Array.isArray(a.abi) || typeof a.bytecode !== 'string' ||
    !/^[0-9a-f]+$/.test(a.bytecode) || typeof a.evmVersion !== 'string' || typeof a.sourceHash !== 'string' ||
    typeof a.solcVersion !== 'string'
  ) {
    throw new ContractError('ARTIFACT', `${path} is not a registry artifact`);
  }
  return { contractName: a.contractName ?? CONTRACT_NAME, abi: a.abi, bytecode: a.bytecode, solcVersion: a.solcVersion, evmVersion: a.evmVersion, sourceHash: a.sourceHash };
}
