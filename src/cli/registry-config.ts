/**
 * Which registry a command talks to: `--network` (mainnet, nile, shasta, dev) picks the fullHost
 * and the deployed contract recorded by `onionpost deploy`; `--full-host` and `--registry` override.
 * Deployments are recorded in the user's deployments file (env ONIONPOST_DEPLOYMENTS, default
 * $XDG_DATA_HOME/onionpost/deployments.json) and, for public networks, the repo's
 * deploy/deployments.json.
 *
 * A running sandbox (`npm start`) announces its dev chain in sandbox.json beside the user's
 * deployments file, with its pid: while that process lives, `--network dev` means the sandbox's
 * chain and registry, so the commands it prints work as typed. A dev deployment's own fullHost is
 * used over the default 127.0.0.1:9090 (a dev chain may listen anywhere).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { DEFAULT_DEPLOYMENTS_PATH, KNOWN_NETWORKS, getDeployment, isNetworkName, type Deployment } from '../contract/index.js';
import { ensurePrivateDir } from '../crypto/index.js';
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

/** The options every command that signs TRON transactions takes (see tronKey). */
export function keyOptions<T>(y: Argv<T>) {
  return y
    .option('tron-key-file', { type: 'string', describe: 'file holding the TRON private key (hex); else $TRON_PRIVATE_KEY' })
    .option('dev-account', { type: 'number', describe: 'on the dev chain: use prefunded account N' });
}

export function userDeploymentsPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.ONIONPOST_DEPLOYMENTS || join(env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'onionpost', 'deployments.json');
}

/** What a running sandbox writes so that other commands find its dev chain. */
export interface SandboxMarker {
  pid: number;
  /** The sandbox's state directory. */
  dir: string;
  dev: Deployment;
}

export function sandboxMarkerPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(dirname(userDeploymentsPath(env)), 'sandbox.json');
}

export function writeSandboxMarker(m: SandboxMarker, env: NodeJS.ProcessEnv = process.env): string {
  const path = sandboxMarkerPath(env);
  ensurePrivateDir(dirname(path));
  writeFileSync(path, JSON.stringify(m, null, 2), { mode: 0o600 });
  return path;
}

/** Removes the marker if it is this process's (a second sandbox may have replaced it). */
export function removeSandboxMarker(pid: number, env: NodeJS.ProcessEnv = process.env): void {
  if (runningSandbox(env)?.pid === pid) rmSync(sandboxMarkerPath(env), { force: true });
}

/** The sandbox whose marker names a live process, else null (a stale marker is ignored). */
export function runningSandbox(env: NodeJS.ProcessEnv = process.env): SandboxMarker | null {
  let m: SandboxMarker;
  try {
    m = JSON.parse(readFileSync(sandboxMarkerPath(env), 'utf8')) as SandboxMarker;
    if (typeof m.pid !== 'number' || typeof m.dev?.address !== 'string' || typeof m.dev.fullHost !== 'string') return null;
  } catch {
    return null;
  }
  try {
    process.kill(m.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return null;
  }
  return m;
}

/** The deployment `--network` names on this machine: a running sandbox's for dev, else the recorded one. */
function deploymentOf(network: string): Deployment | undefined {
  if (network === 'dev') return runningSandbox()?.dev ?? getDeployment(network, userDeploymentsPath());
  return getDeployment(network, userDeploymentsPath()) ?? getDeployment(network, DEFAULT_DEPLOYMENTS_PATH);
}

export function networkOf(a: RegistryArgs): string {
  const network = a.network ?? 'dev';
  if (!isNetworkName(network) && !a.fullHost) throw new CliError('USAGE', `unknown network "${network}": use mainnet, nile, shasta or dev, or give --full-host`);
  return network;
}

/** Where commands that write (deploy) reach the network: --full-host, a running sandbox's chain for dev, else the network's default. */
export function fullHostOf(a: RegistryArgs): string {
  const network = networkOf(a);
  return a.fullHost ?? (network === 'dev' ? runningSandbox()?.dev.fullHost : undefined) ?? KNOWN_NETWORKS[network as keyof typeof KNOWN_NETWORKS];
}

/** The registry to use, or null when the command was given no registry options at all. */
export function registryTarget(a: RegistryArgs, required: boolean): { network: string; fullHost: string; contractAddress: string } | null {
  if (!a.network && !a.fullHost && !a.registry) {
    if (!required) return null;
  }
  const network = networkOf(a);
  const deployment = a.registry ? undefined : deploymentOf(network);
  const contractAddress = a.registry ?? deployment?.address;
  if (!contractAddress) {
    throw new CliError('NO_DEPLOYMENT', `no registry is deployed on "${network}" that this machine knows of; run \`onionpost deploy --network ${network}\` (or start the sandbox, \`npm start\`), or pass --registry <address>`);
  }
  const fullHost = a.fullHost ?? (network === 'dev' && deployment ? deployment.fullHost : fullHostOf(a));
  return { network, fullHost, contractAddress };
}

export interface DirectoryArgs extends RegistryArgs {
  directory?: string | undefined;
}

/** The provider directory to use: --directory, else the one recorded beside the network's registry. */
export function directoryTarget(a: DirectoryArgs): { network: string; fullHost: string; contractAddress: string; token: string | null } {
  const network = networkOf(a);
  const deployment = deploymentOf(network);
  const contractAddress = a.directory ?? deployment?.directory;
  if (!contractAddress) {
    throw new CliError('NO_DEPLOYMENT', `no provider directory is deployed on "${network}" that this machine knows of; run \`onionpost deploy --network ${network}\` (or start the sandbox, \`npm start\`), or pass --directory <address>`);
  }
  const fullHost = a.fullHost ?? (network === 'dev' && deployment ? deployment.fullHost : fullHostOf(a));
  return { network, fullHost, contractAddress, token: deployment?.token ?? null };
}
