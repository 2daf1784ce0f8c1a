/**
 * The IdentityRegistry contract's ABI, as pure encode/decode functions over hex (no I/O). Function
 * signatures are flat (see deploy/contracts/IdentityRegistry.sol); parameters are ABI-encoded here
 * and sent as `function_selector` + `parameter`, the form java-tron's trigger APIs take.
 */
import { utils } from 'tronweb';
import { concatBytes, fromHex, toHex, utf8Bytes } from '../bytes.js';
import { fromEvmAddress } from './address.js';
import type { RawRecord } from './record.js';

const { AbiCoder, keccak256 } = utils.ethersUtils;
const coder = new AbiCoder();

/** A contract call: java-tron's `function_selector` and hex `parameter` (no 0x, no method id). */
export interface EncodedCall {
  selector: string;
  parameter: string;
}

const RECORD_TAIL = ['bytes32', 'bytes32', 'string', 'uint64', 'bytes'] as const;

function encode(selector: string, types: readonly string[], values: readonly unknown[]): EncodedCall {
  return { selector, parameter: coder.encode(types, values).slice(2) };
}

const b32 = (b: Uint8Array) => `0x${toHex(b)}`;
/** ABI `address` words are the 20 bytes after TRON's 0x41. */
const evm = (tron21: Uint8Array) => `0x${toHex(tron21.subarray(1))}`;

export const calls = {
  lookup: (name: string) => encode('lookup(string)', ['string'], [name]),
  lookupByOwner: (owner21: Uint8Array) => encode('lookupByOwner(address)', ['address'], [evm(owner21)]),
  chainId: (): EncodedCall => ({ selector: 'chainId()', parameter: '' }),
  minCommitmentAge: (): EncodedCall => ({ selector: 'minCommitmentAge()', parameter: '' }),
  commit: (commitment: Uint8Array) => encode('commit(bytes32)', ['bytes32'], [b32(commitment)]),
  register: (f: { name: string; identityKey: Uint8Array; encryptionKey: Uint8Array; mailboxes: string; signature: Uint8Array; secret: Uint8Array }) =>
    encode('register(string,bytes32,bytes32,string,bytes,bytes32)', ['string', 'bytes32', 'bytes32', 'string', 'bytes', 'bytes32'], [
      f.name, b32(f.identityKey), b32(f.encryptionKey), f.mailboxes, b32(f.signature), b32(f.secret),
    ]),
  update: (f: { identityKey: Uint8Array; encryptionKey: Uint8Array; mailboxes: string; version: number; signature: Uint8Array }) =>
    encode('update(bytes32,bytes32,string,uint64,bytes)', ['bytes32', 'bytes32', 'string', 'uint64', 'bytes'], [
      b32(f.identityKey), b32(f.encryptionKey), f.mailboxes, BigInt(f.version), b32(f.signature),
    ]),
};

/** keccak256(abi.encodePacked(string name, address owner, bytes32 secret)), as the contract computes it. */
export function commitmentOf(name: string, owner21: Uint8Array, secret: Uint8Array): Uint8Array {
  return fromHex(keccak256(concatBytes(utf8Bytes(name), owner21.subarray(1), secret)).slice(2));
}

function decode(types: readonly string[], hex: string): unknown[] {
  return [...coder.decode(types, `0x${hex}`)];
}

const bytesOf = (v: unknown) => fromHex(String(v).slice(2));
const versionOf = (v: unknown) => {
  const n = BigInt(v as bigint);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('version out of range');
  return Number(n);
};

/** Decodes `lookup(name)`'s result; null when the name is free (owner is the zero address). */
export function decodeLookup(name: string, hex: string): RawRecord | null {
  const [owner, identityKey, encryptionKey, mailboxes, version, signature] = decode(['address', ...RECORD_TAIL], hex);
  const parsed = fromEvmAddress(String(owner));
  if (!parsed) throw new TypeError('owner is not an address');
  if (/^41(00)+$/.test(parsed.hex)) return null;
  return {
    name, owner: parsed.bytes, identityKey: bytesOf(identityKey), encryptionKey: bytesOf(encryptionKey),
    mailboxes: String(mailboxes), version: versionOf(version), signature: bytesOf(signature),
  };
}

/** Decodes `lookupByOwner(owner)`'s result; null when the owner has no record (empty name). */
export function decodeLookupByOwner(owner21: Uint8Array, hex: string): RawRecord | null {
  const [name, identityKey, encryptionKey, mailboxes, version, signature] = decode(['string', ...RECORD_TAIL], hex);
  if (name === '') return null;
  return {
    name: String(name), owner: Uint8Array.from(owner21), identityKey: bytesOf(identityKey), encryptionKey: bytesOf(encryptionKey),
    mailboxes: String(mailboxes), version: versionOf(version), signature: bytesOf(signature),
  };
}

export function decodeUint(hex: string): bigint {
  const [v] = decode(['uint256'], hex);
  return BigInt(v as bigint);
}

/**
 * The reason in revert data: Error(string) gives its text, Panic(uint256) "Panic(0x..)", anything
 * else (including empty data) null.
 */
export function decodeRevert(hex: string): string | null {
  const h = hex.replace(/^0x/, '').toLowerCase();
  try {
    if (h.startsWith('08c379a0')) return String(decode(['string'], h.slice(8))[0]);
    if (h.startsWith('4e487b71')) return `Panic(0x${BigInt(decode(['uint256'], h.slice(8))[0] as bigint).toString(16)})`;
  } catch {
    // Truncated or garbled revert data carries no readable reason; the caller reports the node's text.
    return null;
  }
  return null;
}
