/**
 * Compiles each deploy/contracts/<Name>.sol with the npm `solc` (wasm) and writes the checked-in
 * artifact deploy/artifacts/<Name>.json. Run after changing a contract:
 *
 *   npx tsc -p . && node dist/src/contract/compile.js
 *
 * evmVersion is pinned to cancun: solc 0.8.37 defaults to osaka, and TRON's TVM supports Cancun
 * opcodes (PUSH0, MCOPY, TLOAD/TSTORE) but not all of Prague/Osaka. The dev chain runs the EVM at
 * Hardfork.Cancun, so a wrong setting fails locally too. A unit test recompiles and compares.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { ContractError } from './errors.js';
import { CONTRACT_NAMES, CONTRACT_NAME, artifactPath, sourcePath, type ContractArtifact, type ContractName } from './artifact.js';

export const EVM_VERSION = 'cancun';

interface SolcOutput {
  errors?: { severity: string; formattedMessage: string }[];
  contracts?: Record<string, Record<string, { abi: unknown[]; evm: { bytecode: { object: string } } }>>;
}

/** sha256 of the source text, hex; recorded in the artifact so staleness is visible. */
export function sourceHash(source: string): string {
  return createHash('sha256').update(source, 'utf8').digest('hex');
}

/** Compiles the registry source (read from the repo unless given) into an artifact. */
export function compileRegistry(source?: string): ContractArtifact {
  return compileContract(CONTRACT_NAME, source);
}

/** Compiles one contract's source (read from the repo unless given) into an artifact. Takes ~1 s and ~250 MB. */
export function compileContract(name: ContractName, source: string = readFileSync(sourcePath(name), 'utf8')): ContractArtifact {
  // solc is CommonJS and loads a large wasm blob; require it lazily so importing this module is cheap.
  const solc = createRequire(import.meta.url)('solc') as { compile(input: string): string; version(): string };
  const fileName = `${name}.sol`;
  const input = {
    language: 'Solidity',
    sources: { [fileName]: { content: source } },
    settings: {
      evmVersion: EVM_VERSION,
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
    },
  };
  const out = JSON.parse(solc.compile(JSON.stringify(input))) as SolcOutput;
  const errors = (out.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length > 0) {
    throw new ContractError('COMPILE', errors.map((e) => e.formattedMessage).join('\n'));
  }
  const c = out.contracts?.[fileName]?.[name];
  if (!c) throw new ContractError('COMPILE', `solc produced no ${name}`);
  return {
    contractName: name,
    abi: c.abi,
    bytecode: c.evm.bytecode.object,
    solcVersion: solc.version(),
    evmVersion: EVM_VERSION,
    sourceHash: sourceHash(source),
  };
}

/** The artifact's canonical file text (stable key order, trailing newline). */
export function serializeArtifact(a: ContractArtifact): string {
  return JSON.stringify(a, null, 2) + '\n';
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const name of CONTRACT_NAMES) {
    const artifact = compileContract(name);
    writeFileSync(artifactPath(name), serializeArtifact(artifact));
    console.log(`wrote ${artifactPath(name)} (solc ${artifact.solcVersion}, ${artifact.bytecode.length / 2} bytes)`);
  }
}
