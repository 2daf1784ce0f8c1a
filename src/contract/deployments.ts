/**
 * Where the registry is deployed, per network. File format (JSON, one entry per network):
 *
 *   { "<network>": { "address": "T…", "txId": "<64 hex>", "deployedAt": "<ISO 8601>", "fullHost": "https://…" } }
 *
 * Public networks live in deploy/deployments.json (checked in). A dev chain is per machine, so dev
 * deployments go to a file the caller names (the node's data dir); writing "dev" to the default file
 * is refused.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { repoRoot } from './artifact.js';
import { ContractError } from './errors.js';

/** Known networks and their default fullHost. */
export const KNOWN_NETWORKS = Object.freeze({
  mainnet: 'https://api.trongrid.io',
  nile: 'https://nile.trongrid.io',
  shasta: 'https://api.shasta.trongrid.io',
  dev: 'http://127.0.0.1:9090',
});
export type NetworkName = keyof typeof KNOWN_NETWORKS;

export function isNetworkName(s: string): s is NetworkName {
  return Object.hasOwn(KNOWN_NETWORKS, s);
}

export interface Deployment {
  /** Base58 contract address. */
  address: string;
  txId: string;
  /** ISO 8601. */
  deployedAt: string;
  fullHost: string;
  /** The ProviderDirectory deployed beside the registry (base58), when there is one. */
  directory?: string;
  /** Dev chain only: the TRC-20 test token deployed for payments. */
  token?: string;
}

export type Deployments = Record<string, Deployment>;

export const DEFAULT_DEPLOYMENTS_PATH = join(repoRoot(), 'deploy', 'deployments.json');

/** Reads a deployments file; a missing file is `{}`. Throws ContractError('DEPLOYMENTS_FILE') if malformed. */
export function readDeployments(path: string = DEFAULT_DEPLOYMENTS_PATH): Deployments {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ContractError('DEPLOYMENTS_FILE', `cannot read ${path}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ContractError('DEPLOYMENTS_FILE', `${path} is not JSON`, { cause: err });
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ContractError('DEPLOYMENTS_FILE', `${path} is not an object`);
  const out: Deployments = {};
  for (const [net, d] of Object.entries(parsed as Record<string, unknown>)) {
    const e = d as Partial<Deployment> | null;
    if (!e || typeof e.address !== 'string' || typeof e.txId !== 'string' || typeof e.deployedAt !== 'string' || typeof e.fullHost !== 'string') {
      throw new ContractError('DEPLOYMENTS_FILE', `${path}: entry "${net}" is malformed`);
    }
    if ((e.directory !== undefined && typeof e.directory !== 'string') || (e.token !== undefined && typeof e.token !== 'string')) {
      throw new ContractError('DEPLOYMENTS_FILE', `${path}: entry "${net}" is malformed`);
    }
    out[net] = pick(e as Deployment);
  }
  return out;
}

function pick(d: Deployment): Deployment {
  return {
    address: d.address, txId: d.txId, deployedAt: d.deployedAt, fullHost: d.fullHost,
    ...(d.directory ? { directory: d.directory } : {}), ...(d.token ? { token: d.token } : {}),
  };
}

/** The deployment for `network`, or undefined. */
export function getDeployment(network: string, path: string = DEFAULT_DEPLOYMENTS_PATH): Deployment | undefined {
  return readDeployments(path)[network];
}

/** Records a deployment (replacing that network's entry), atomically (temp file + rename). */
export function writeDeployment(network: string, d: Deployment, path: string = DEFAULT_DEPLOYMENTS_PATH): void {
  if (network === 'dev' && path === DEFAULT_DEPLOYMENTS_PATH) {
    throw new ContractError('DEPLOYMENTS_FILE', 'dev deployments belong in the node data dir, not deploy/deployments.json');
  }
  const all = readDeployments(path);
  all[network] = pick(d);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(all, null, 2) + '\n');
  renameSync(tmp, path);
}
