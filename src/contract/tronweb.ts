/**
 * The few tronweb calls the contract layer makes, behind a typed face. tronweb's typings are loose;
 * the `any` of this layer stays in this file.
 */
import type { TronWeb } from 'tronweb';

/* eslint-disable @typescript-eslint/no-explicit-any */

export interface UnsignedTx {
  txID: string;
  contract_address?: string;
  [k: string]: unknown;
}

export interface TxInfoLike {
  id?: string;
  blockNumber?: number;
  contract_address?: string;
  contractResult?: string[];
  receipt?: { result?: string; energy_usage_total?: number; energy_fee?: number };
  result?: string;
  resMessage?: string;
}

export function fullHostOf(tw: TronWeb): string {
  return String((tw as any).fullNode?.host ?? '');
}

export function defaultHexAddress(tw: TronWeb): string | undefined {
  const hex = (tw as any).defaultAddress?.hex;
  return typeof hex === 'string' && /^41[0-9a-fA-F]{40}$/.test(hex) ? hex.toLowerCase() : undefined;
}

export function hasPrivateKey(tw: TronWeb): boolean {
  return typeof (tw as any).defaultPrivateKey === 'string' && (tw as any).defaultPrivateKey.length > 0;
}

export async function buildCreate(tw: TronWeb, o: { abi: unknown[]; bytecode: string; feeLimit: number; parameters: unknown[]; name: string }, owner: string): Promise<UnsignedTx> {
  return (await (tw as any).transactionBuilder.createSmartContract(
    { abi: o.abi, bytecode: o.bytecode, feeLimit: o.feeLimit, parameters: o.parameters, name: o.name, callValue: 0, userFeePercentage: 100, originEnergyLimit: 10_000_000 },
    owner,
  )) as UnsignedTx;
}

export async function signTx(tw: TronWeb, tx: UnsignedTx): Promise<UnsignedTx> {
  return (await (tw as any).trx.sign(tx)) as UnsignedTx;
}

export async function sendRaw(tw: TronWeb, tx: UnsignedTx): Promise<{ result?: boolean; code?: string; message?: string; txid?: string }> {
  return (await (tw as any).trx.sendRawTransaction(tx)) as { result?: boolean; code?: string; message?: string; txid?: string };
}

export async function unconfirmedInfo(tw: TronWeb, txId: string): Promise<TxInfoLike> {
  return ((await (tw as any).trx.getUnconfirmedTransactionInfo(txId)) ?? {}) as TxInfoLike;
}

export async function confirmedInfo(tw: TronWeb, txId: string): Promise<TxInfoLike> {
  return ((await (tw as any).trx.getTransactionInfo(txId)) ?? {}) as TxInfoLike;
}

export function toBase58(tw: TronWeb, hex41: string): string {
  return String((tw as any).address.fromHex(hex41));
}

export function hexToUtf8(hex: string): string {
  return Buffer.from(hex.replace(/^0x/, ''), 'hex').toString('utf8');
}
