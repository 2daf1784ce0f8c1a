/**
 * ProviderDirectory's and TRC-20's ABI as pure encode/decode functions over hex (no I/O), in the
 * form java-tron's trigger APIs take. See deploy/contracts/ProviderDirectory.sol.
 */
import { utils } from 'tronweb';
import { fromHex, toHex } from '../bytes.js';
import type { EncodedCall } from './abi.js';
import { fromEvmAddress, type ParsedTronAddress } from './address.js';

const { AbiCoder } = utils.ethersUtils;
const coder = new AbiCoder();

function encode(selector: string, types: readonly string[], values: readonly unknown[]): EncodedCall {
  return { selector, parameter: coder.encode(types, values).slice(2) };
}
const b32 = (b: Uint8Array) => `0x${toHex(b)}`;
const evm = (tron21: Uint8Array) => `0x${toHex(tron21.subarray(1))}`;
const ZERO_EVM = `0x${'00'.repeat(20)}`;

/** Terms as the contract stores them; `token` null = priced in TRX (sun). */
export interface RawTerms {
  retentionDays: number;
  quotaMB: number;
  token: Uint8Array | null;
  price: bigint;
}

export const directoryCalls = {
  register: (identityKey: Uint8Array, bindingSig: Uint8Array, t: RawTerms) =>
    encode('register(bytes32,bytes,uint32,uint32,address,uint256)', ['bytes32', 'bytes', 'uint32', 'uint32', 'address', 'uint256'], [
      b32(identityKey), b32(bindingSig), t.retentionDays, t.quotaMB, t.token ? evm(t.token) : ZERO_EVM, t.price,
    ]),
  updateTerms: (t: RawTerms) =>
    encode('updateTerms(uint32,uint32,address,uint256)', ['uint32', 'uint32', 'address', 'uint256'], [t.retentionDays, t.quotaMB, t.token ? evm(t.token) : ZERO_EVM, t.price]),
  deregister: (): EncodedCall => ({ selector: 'deregister()', parameter: '' }),
  withdraw: (): EncodedCall => ({ selector: 'withdraw()', parameter: '' }),
  pay: (owner: Uint8Array, tag: Uint8Array, periods: number) =>
    encode('pay(address,bytes32,uint32)', ['address', 'bytes32', 'uint32'], [evm(owner), b32(tag), periods]),
  payToken: (owner: Uint8Array, tag: Uint8Array, periods: number, token: Uint8Array) =>
    encode('payToken(address,bytes32,uint32,address)', ['address', 'bytes32', 'uint32', 'address'], [evm(owner), b32(tag), periods, evm(token)]),
  provider: (owner: Uint8Array) => encode('provider(address)', ['address'], [evm(owner)]),
  ownerOfKey: (identityKey: Uint8Array) => encode('ownerOfKey(bytes32)', ['bytes32'], [b32(identityKey)]),
  paidUntil: (owner: Uint8Array, tag: Uint8Array) => encode('paidUntil(address,bytes32)', ['address', 'bytes32'], [evm(owner), b32(tag)]),
  ownerCount: (): EncodedCall => ({ selector: 'ownerCount()', parameter: '' }),
  ownersPage: (offset: number, limit: number) => encode('ownersPage(uint256,uint256)', ['uint256', 'uint256'], [offset, limit]),
  chainId: (): EncodedCall => ({ selector: 'chainId()', parameter: '' }),
};

export const trc20Calls = {
  approve: (spender: Uint8Array, amount: bigint) => encode('approve(address,uint256)', ['address', 'uint256'], [evm(spender), amount]),
  allowance: (owner: Uint8Array, spender: Uint8Array) => encode('allowance(address,address)', ['address', 'address'], [evm(owner), evm(spender)]),
  balanceOf: (owner: Uint8Array) => encode('balanceOf(address)', ['address'], [evm(owner)]),
};

function decode(types: readonly string[], hex: string): unknown[] {
  return [...coder.decode(types, `0x${hex}`)];
}

function address(v: unknown): ParsedTronAddress {
  const a = fromEvmAddress(String(v));
  if (!a) throw new TypeError('not an address');
  return a;
}

export const DIRECTORY_STATUS = ['none', 'listed', 'leaving'] as const;
export type DirectoryStatus = (typeof DIRECTORY_STATUS)[number];

export interface RawListing {
  status: DirectoryStatus;
  identityKey: Uint8Array;
  bindingSig: Uint8Array;
  terms: RawTerms;
  stake: bigint;
  /** Unix seconds; 0 while listed. */
  withdrawableAt: number;
  version: number;
}

export function decodeProvider(hex: string): RawListing {
  const [status, identityKey, bindingSig, retentionDays, quotaMB, token, price, stake, withdrawableAt, version] = decode(
    ['uint8', 'bytes32', 'bytes', 'uint32', 'uint32', 'address', 'uint256', 'uint256', 'uint64', 'uint64'], hex,
  );
  const s = DIRECTORY_STATUS[Number(status)];
  if (!s) throw new TypeError(`unknown provider status ${String(status)}`);
  const tokenAddr = address(token);
  return {
    status: s,
    identityKey: fromHex(String(identityKey).slice(2)),
    bindingSig: fromHex(String(bindingSig).slice(2)),
    terms: { retentionDays: Number(retentionDays), quotaMB: Number(quotaMB), token: /^41(00)+$/.test(tokenAddr.hex) ? null : tokenAddr.bytes, price: BigInt(price as bigint) },
    stake: BigInt(stake as bigint),
    withdrawableAt: Number(withdrawableAt),
    version: Number(version),
  };
}

export function decodeAddress(hex: string): ParsedTronAddress | null {
  const a = address(decode(['address'], hex)[0]);
  return /^41(00)+$/.test(a.hex) ? null : a;
}

export function decodeAddressList(hex: string): ParsedTronAddress[] {
  const [list] = decode(['address[]'], hex);
  return [...(list as unknown[])].map(address);
}

export function decodeUint256(hex: string): bigint {
  return BigInt(decode(['uint256'], hex)[0] as bigint);
}
