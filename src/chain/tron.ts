/**
 * The thin adapter over tronweb's helpers the dev chain reuses: its protobuf encoder (so JSON,
 * raw_data_hex and txID agree byte for byte with what tronweb checks), signature recovery, address
 * forms and hashing. tronweb's typings are loose; every `any` of the chain lives in this file.
 */
import { createHash } from 'node:crypto';
import { TronWeb, utils } from 'tronweb';

/* eslint-disable @typescript-eslint/no-explicit-any */
const tx: any = (utils as any).transaction;
const crypto: any = (utils as any).crypto;
const ethers: any = (utils as any).ethersUtils;
const Addr: any = (TronWeb as any).address;

/** A transaction as JSON on the wire (java-tron's shape with visible=false). */
export interface TxJson {
  txID: string;
  raw_data: RawDataJson;
  raw_data_hex: string;
  signature?: string[];
  visible?: boolean;
  /** tronweb adds this to deploy transactions; ignored (the node derives the address itself). */
  contract_address?: string;
}

export interface RawDataJson {
  contract: { parameter: { value: Record<string, any>; type_url: string }; type: string; Permission_id?: number }[];
  ref_block_bytes: string;
  ref_block_hash: string;
  expiration: number;
  timestamp: number;
  fee_limit?: number;
  data?: string;
}

export function strip0x(hex: string): string {
  return hex.startsWith('0x') || hex.startsWith('0X') ? hex.slice(2) : hex;
}

/** tronweb's own check: `raw_data` re-encodes to `raw_data_hex` and sha256 of it is `txID`. */
export function txCheck(t: TxJson): boolean {
  try {
    return tx.txCheck(t) === true;
  } catch {
    return false;
  }
}

/** Encodes a node-built raw_data with tronweb's encoder: its hex and its txID (no 0x). */
export function encodeRawData(raw: RawDataJson): { raw_data_hex: string; txID: string } {
  const pb = tx.txJsonToPb({ raw_data: raw, visible: false });
  return { raw_data_hex: strip0x(tx.txPbToRawDataHex(pb)).toLowerCase(), txID: strip0x(tx.txPbToTxID(pb)).toLowerCase() };
}

/** The 41-hex address that produced a 65-byte r‖s‖v signature over txID; throws on a malformed signature. */
export function recoverSigner(txID: string, signature: string): string {
  return String(crypto.ecRecover(txID, signature)).toLowerCase();
}

export function toBase58(hex41: string): string {
  return String(Addr.fromHex(hex41));
}

/** Accepts base58, 41-hex or 0x-hex; returns lower-case 41-hex, or undefined if it is not an address. */
export function toHex41(addr: string): string | undefined {
  try {
    if (/^(0x)?[0-9a-fA-F]{40}$/.test(addr)) return '41' + strip0x(addr).toLowerCase();
    if (/^41[0-9a-fA-F]{40}$/.test(addr)) return addr.toLowerCase();
    if (!TronWeb.isAddress(addr)) return undefined;
    const h = String(Addr.toHex(addr)).toLowerCase();
    return /^41[0-9a-f]{40}$/.test(h) ? h : undefined;
  } catch {
    return undefined;
  }
}

/** 41-hex address of a secp256k1 private key (hex, no 0x). */
export function addressOfPrivateKey(privateKey: string): string {
  return String(Addr.toHex(Addr.fromPrivateKey(privateKey))).toLowerCase();
}

export function keccak256Hex(bytesHex: string): string {
  return strip0x(String(ethers.keccak256('0x' + strip0x(bytesHex))));
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function utf8ToHex(s: string): string {
  return Buffer.from(s, 'utf8').toString('hex');
}

/** ABI-decodes `dataHex` as `types`; values in TronGrid's event convention (see events.ts). */
export function abiDecode(types: string[], dataHex: string): unknown[] {
  const coder = ethers.AbiCoder.defaultAbiCoder();
  return Array.from(coder.decode(types, '0x' + strip0x(dataHex)) as ArrayLike<unknown>);
}

/** keccak256 of an event or function signature, hex without 0x. */
export function signatureHash(sig: string): string {
  return strip0x(String(ethers.id(sig)));
}
