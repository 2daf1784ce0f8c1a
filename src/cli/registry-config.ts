/**
 * Which registry a command talks to: `--network` (mainnet, nile, shasta, dev) picks the fullHost
 * and the deployed contract recorded by `onionpost deploy`; `--full-host` and `--registry` override.
 * Deployments are recorded in the user's deployments file (env ONIONPOST_DEPLOYMENTS, default
 * $XDG_DATA_HOME/onionpost/deployments.json) and, for public networks, the repo's
 * deploy/deployments.json.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_DEPLOYMENTS_PATH, KNOWN_NETWORKS, getDeployment, isNetworkName } from '../contract/index.js';
import { deriveDevAccounts, DEFAULT_SEED } from '../chain/index.js';
import { CliError } from './prompt.js';

export interface RegistryArgs {
  network?: string | undefined;
  fullHost?: string | undefined;
  registry?: string | undefined;
}

export interface KeyArgs {
  tronKeyFile?: string | undefined;
  devAccount?: number | undefined;
}

export function userDeploymentsPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.ONIONPOST_DEPLOYMENTS || join(env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'onionpost', 'deployments.json');
}

export function networkOf(a: RegistryArgs): string {
  const network = a.network ?? 'dev';
  if (!isNetworkName(network) && !a.fullHost) throw new CliError('USAGE', `unknown network "${network}": use mainnet, nile, shasta or dev, or give --full-host`);
  return network;
}

export function fullHostOf(a: RegistryArgs): string {
  const network = networkOf(a);
  return a.fullHost ?? KNOWN_NETWORKS[network as keyof typeof KNOWN_NETWORKS];
}

/** The registry to use, or null when the command was given no registry options at all. */
export function registryTarget(a: RegistryArgs, required: boolean): { network: string; fullHost: string; contractAddress: string } | null {
  if (!a.network && !a.fullHost && !a.registry) {
    if (!required) return null;
  }
  const network = networkOf(a);
  const fullHost = fullHostOf(a);
  const contractAddress = a.registry ?? (getDeployment(network, userDeploymentsPath()) ?? (network !== 'dev' ? getDeployment(network, DEFAULT_DEPLOYMENTS_PATH) : undefined))?.address;
  if (!contractAddress) {
    throw new CliError('NO_DEPLOYMENT', `no registry is deployed on "${network}" that this machine knows of; run \`onionpost deploy --network ${network}\` or pass --registry <address>`);
  }
  return { network, fullHost, contractAddress };
}

/** The TRON private key for writes: --tron-key-file, then $TRON_PRIVATE_KEY, then (dev only) --dev-account N. */
export function tronKey(a: KeyArgs & RegistryArgs, opts: { devDefault?: number } = {}): string {
  if (a.tronKeyFile) {
    try {
      return readFileSync(a.tronKeyFile, 'utf8').trim().replace(/^0x/, '');
    } catch (err) {
      throw new CliError('NO_KEY', `cannot read TRON key file ${a.tronKeyFile}`, { cause: err });
    }
  }
  if (process.env.TRON_PRIVATE_KEY) return process.env.TRON_PRIVATE_KEY.trim().replace(/^0x/, '');
  const account = a.devAccount ?? opts.devDefault;
  if (networkOf(a) === 'dev' && account !== undefined) {
    const acc = deriveDevAccounts(DEFAULT_SEED, account + 1)[account];
    if (!acc) throw new CliError('USAGE', `no dev account ${account}`);
    return acc.privateKey;
  }
  throw new CliError('NO_KEY', networkOf(a) === 'dev'
    ? 'no TRON key: pass --dev-account N (a prefunded dev-chain account), --tron-key-file FILE, or set TRON_PRIVATE_KEY'
    : 'no TRON key: pass --tron-key-file FILE or set TRON_PRIVATE_KEY (a funded account on this network)');
}
