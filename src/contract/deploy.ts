/**
 * Deploys the registry through tronweb: build with transactionBuilder.createSmartContract, sign,
 * sendRawTransaction, then poll the transaction info until it has a receipt (a real network takes a
 * block or more; its solidity node a minute), and require success.
 *
 * Not `contract().new()`: that sleeps 3 s, never checks the receipt and hides the txID.
 */
import type { TronWeb } from 'tronweb';
import { decodeRevertReason } from './abi.js';
import { loadArtifact, type ContractName } from './artifact.js';
import { ContractError } from './errors.js';
import { DEFAULT_DEPLOY_FEE_LIMIT } from './lazy.js';
import {
  buildCreate, confirmedInfo, defaultHexAddress, fullHostOf, hasPrivateKey, hexToUtf8, sendRaw, signTx, toBase58, unconfirmedInfo,
  type TxInfoLike,
} from './tronweb.js';

/** How a deploy is sent and awaited, whatever the contract. */
export interface DeployTxOptions {
  /** A TronWeb with fullHost and the deployer's private key set (its defaultAddress pays). */
  tronWeb: TronWeb;
  /** Most the deploy may burn, sun; default 2 000 TRX (the dev chain charges ~110 TRX at 100 sun/energy). */
  feeLimit?: number;
  signal?: AbortSignal;
  /** Deadline for the whole deploy, receipt included, ms. */
  timeoutMs: number;
  /** Pause between receipt polls, ms; default 1000 (the first poll is immediate). */
  pollIntervalMs?: number;
}

export interface DeployRegistryOptions extends DeployTxOptions {
  /** Seconds a commitment must age before register() (real networks: 60; tests may use 0). */
  minCommitmentAge: number;
  /** Seconds after which a commitment expires (real networks: 86400). */
  maxCommitmentAge: number;
}

export interface DeployedRegistry {
  /** Base58 contract address. */
  address: string;
  txId: string;
}

const NETWORK_ERROR = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|socket hang up|Network Error|timeout of \d+ms exceeded/i;
const UNFUNDED = /balance is not sufficient|no OwnerAccount|account .* does not exist/i;

/** Deploys IdentityRegistry(minCommitmentAge, maxCommitmentAge); resolves once the creation is mined successfully. */
export async function deployRegistry(o: DeployRegistryOptions): Promise<DeployedRegistry> {
  if (!(Number.isSafeInteger(o.minCommitmentAge) && Number.isSafeInteger(o.maxCommitmentAge) && o.minCommitmentAge >= 0 && o.maxCommitmentAge >= o.minCommitmentAge)) {
    throw new RangeError('need 0 <= minCommitmentAge <= maxCommitmentAge (seconds)');
  }
  return deployContract(o, 'IdentityRegistry', [o.minCommitmentAge, o.maxCommitmentAge]);
}

export interface DeployAllOptions extends DeployTxOptions {
  minCommitmentAge: number;
  maxCommitmentAge: number;
  /** Least stake a listed mailbox provider locks, sun. */
  minStakeSun: number;
  /** Seconds a leaving provider's stake stays locked. */
  withdrawalDelaySeconds: number;
  /** Also deploy a TRC-20 TestToken (dev chains only: token payments tried offline). */
  testToken: boolean;
}

export interface DeployedAll {
  registry: DeployedRegistry;
  directory: DeployedRegistry;
  token: DeployedRegistry | null;
}

/** What `onionpost deploy` and the sandbox put on a chain: the registry, the provider directory and, on dev, a test token. */
export async function deployAll(o: DeployAllOptions): Promise<DeployedAll> {
  const registry = await deployRegistry(o);
  const directory = await deployContract(o, 'ProviderDirectory', [o.minStakeSun, o.withdrawalDelaySeconds]);
  const token = o.testToken ? await deployContract(o, 'TestToken', ['onionpost test dollar', 'OPTD', 1_000_000_000_000_000]) : null;
  return { registry, directory, token };
}

/** Deploys one of the project's contracts with its constructor `parameters`; resolves once mined successfully. */
export async function deployContract(o: DeployTxOptions, name: ContractName, parameters: unknown[]): Promise<DeployedRegistry> {
  const deadline = Date.now() + o.timeoutMs;
  const owner = defaultHexAddress(o.tronWeb);
  if (!owner || !hasPrivateKey(o.tronWeb)) throw new ContractError('BROADCAST_REJECTED', 'tronWeb has no default private key to deploy with');
  const artifact = loadArtifact(name);
  await preflight(fullHostOf(o.tronWeb), deadline, o.signal);

  const tx = await guard(async () => {
    const unsigned = await buildCreate(o.tronWeb, {
      abi: artifact.abi,
      bytecode: artifact.bytecode,
      feeLimit: o.feeLimit ?? DEFAULT_DEPLOY_FEE_LIMIT,
      parameters,
      name,
    }, owner);
    return signTx(o.tronWeb, unsigned);
  });
  checkAbort(o.signal, deadline);
  const sent = await guard(() => sendRaw(o.tronWeb, tx));
  if (!sent.result) {
    const text = sent.message ? hexToUtf8(sent.message) : (sent.code ?? 'rejected');
    const nodeCode = sent.code ?? 'UNKNOWN';
    if (UNFUNDED.test(text)) throw new ContractError('UNFUNDED', `the deployer cannot pay: ${text}`, { nodeCode });
    throw new ContractError('BROADCAST_REJECTED', `broadcast rejected (${nodeCode}): ${text}`, { nodeCode });
  }

  const info = await pollReceipt(o, tx.txID, deadline);
  const failed = info.result === 'FAILED' || (info.receipt?.result !== undefined && info.receipt.result !== 'SUCCESS');
  if (failed) {
    const reason = decodeRevertReason(info.contractResult?.[0]) ?? (info.resMessage ? hexToUtf8(info.resMessage) : info.receipt?.result ?? 'failed');
    throw new ContractError('DEPLOY_FAILED', `deploy ${tx.txID} failed: ${info.receipt?.result ?? 'FAILED'} ${reason}`);
  }
  const address = info.contract_address ?? tx.contract_address;
  if (!address) throw new ContractError('DEPLOY_FAILED', `deploy ${tx.txID} reported no contract address`);
  return { address: toBase58(o.tronWeb, address), txId: tx.txID };
}

async function pollReceipt(o: DeployTxOptions, txId: string, deadline: number): Promise<TxInfoLike> {
  const interval = o.pollIntervalMs ?? 1000;
  // Bounded by the deadline: every pass either returns, throws, or sleeps until at most the deadline.
  for (;;) {
    checkAbort(o.signal, deadline, `no receipt for ${txId}`);
    let info = await guard(() => unconfirmedInfo(o.tronWeb, txId));
    if (!hasReceipt(info)) info = await guard(() => confirmedInfo(o.tronWeb, txId));
    if (hasReceipt(info)) return info;
    await sleep(Math.min(interval, Math.max(0, deadline - Date.now())), o.signal);
  }
}

function hasReceipt(info: TxInfoLike): boolean {
  return typeof info.id === 'string' && (info.receipt !== undefined || info.blockNumber !== undefined);
}

async function preflight(fullHost: string, deadline: number, signal: AbortSignal | undefined): Promise<void> {
  const remaining = Math.max(1, Math.min(10_000, deadline - Date.now()));
  const timeout = AbortSignal.timeout(remaining);
  try {
    const res = await fetch(`${fullHost.replace(/\/$/, '')}/wallet/getnowblock`, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
    await res.arrayBuffer();
    if (!res.ok) throw new ContractError('UNREACHABLE', `${fullHost} answered HTTP ${res.status}`);
  } catch (err) {
    if (err instanceof ContractError) throw err;
    if (signal?.aborted) throw new ContractError('TIMEOUT', 'deploy aborted', { cause: signal.reason });
    throw new ContractError('UNREACHABLE', `cannot reach ${fullHost}`, { cause: err });
  }
}

/** Runs a tronweb call, turning its connection failures into UNREACHABLE. */
async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ContractError) throw err;
    const text = err instanceof Error ? `${err.message} ${(err as { code?: string }).code ?? ''}` : String(err);
    // tronweb wraps transport errors into plain text (e.g. "Unable to get params: connect ECONNREFUSED"), so the text is all there is.
    if (NETWORK_ERROR.test(text)) throw new ContractError('UNREACHABLE', `node unreachable: ${text.trim()}`, { cause: err });
    throw new ContractError('BROADCAST_REJECTED', `tronweb failed: ${text.trim()}`, { cause: err });
  }
}

function checkAbort(signal: AbortSignal | undefined, deadline: number, what = 'deploy'): void {
  if (signal?.aborted) throw new ContractError('TIMEOUT', `${what}: aborted`, { cause: signal.reason });
  if (Date.now() >= deadline) throw new ContractError('TIMEOUT', `${what}: deadline passed`);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
