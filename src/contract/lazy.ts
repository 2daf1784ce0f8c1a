/**
 * The contract layer's deploy functions as index.ts exports them: deploy.ts (and tronweb, about
 * 50 MB and a second to load) is imported when a deployment is made, not when the layer is. A node
 * that reads the deployments file to find its registry never loads it.
 */
import type {
  DeployAllOptions, DeployedAll, DeployedRegistry, DeployRegistryOptions, DeployTxOptions,
} from './deploy.js';
import type { ContractName } from './artifact.js';

/** Fee limit of a deployment transaction, sun (2,000 TRX). */
export const DEFAULT_DEPLOY_FEE_LIMIT = 2_000_000_000;

export async function deployRegistry(o: DeployRegistryOptions): Promise<DeployedRegistry> {
  return (await import('./deploy.js')).deployRegistry(o);
}

export async function deployAll(o: DeployAllOptions): Promise<DeployedAll> {
  return (await import('./deploy.js')).deployAll(o);
}

export async function deployContract(o: DeployTxOptions, name: ContractName, parameters: unknown[]): Promise<DeployedRegistry> {
  return (await import('./deploy.js')).deployContract(o, name, parameters);
}
