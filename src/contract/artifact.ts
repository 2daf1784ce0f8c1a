/**
 * The checked-in compiled contracts (deploy/artifacts/<Name>.json), loaded at run time: the identity
 * registry, the mailbox-provider directory, and a TRC-20 test token for the dev chain. Paths are
 * resolved from this module's location, so it works both from src/ (ts) and dist/src/ (js).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ContractError } from './errors.js';

/** Every contract the project ships, each compiled from deploy/contracts/<Name>.sol. */
export const CONTRACT_NAMES = ['IdentityRegistry', 'ProviderDirectory', 'TestToken'] as const;
export type ContractName = (typeof CONTRACT_NAMES)[number];

export const CONTRACT_NAME: ContractName = 'IdentityRegistry';

/** The repository root, from this module's location (src/contract or dist/src/contract). */
export function repoRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/contract -> ../.. ; dist/src/contract -> ../../..
  const parts = here.split(/[\\/]/);
  const distAt = parts.lastIndexOf('dist');
  return distAt >= 0 ? parts.slice(0, distAt).join('/') || '/' : join(here, '..', '..');
}

export function sourcePath(name: ContractName): string {
  return join(repoRoot(), 'deploy', 'contracts', `${name}.sol`);
}

export function artifactPath(name: ContractName): string {
  return join(repoRoot(), 'deploy', 'artifacts', `${name}.json`);
}

export const SOURCE_PATH = sourcePath(CONTRACT_NAME);
export const ARTIFACT_PATH = artifactPath(CONTRACT_NAME);

/**
 * An artifact file. `abi` is solc's JSON ABI (flat: no tuples); `bytecode` is the creation code as
 * hex without 0x (constructor arguments are appended by the deployer: IdentityRegistry
 * `(uint256 minCommitmentAge, uint256 maxCommitmentAge)`, ProviderDirectory `(uint256 minStakeSun,
 * uint256 withdrawalDelaySeconds)`, TestToken `(string name, string symbol, uint256 supply)`);
 * `sourceHash` is sha256 of the .sol text it was built from.
 */
export interface ContractArtifact {
  contractName: string;
  abi: unknown[];
  bytecode: string;
  solcVersion: string;
  evmVersion: string;
  sourceHash: string;
}

export type RegistryArtifact = ContractArtifact;

/** Reads and shape-checks the registry's artifact (or the one at `path`). */
export function loadRegistryArtifact(path: string = ARTIFACT_PATH): ContractArtifact {
  return readArtifact(path, CONTRACT_NAME);
}

/** Reads and shape-checks a contract's artifact. Throws ContractError('ARTIFACT') if missing or malformed. */
export function loadArtifact(name: ContractName): ContractArtifact {
  return readArtifact(artifactPath(name), name);
}

function readArtifact(path: string, name: ContractName): ContractArtifact {
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
    throw new ContractError('ARTIFACT', `${path} is not a contract artifact`);
  }
  return { contractName: a.contractName ?? name, abi: a.abi, bytecode: a.bytecode, solcVersion: a.solcVersion, evmVersion: a.evmVersion, sourceHash: a.sourceHash };
}
