/**
 * TRON addresses. Users see base58check ("T…", 34 characters); transaction JSON uses 21-byte hex
 * with the 0x41 prefix ("41…", 42 characters); the EVM and ABI words use the 20 bytes after it.
 * Conversions here are pure so that records can be checked without tronweb.
 */
import { createECDH, createHash } from 'node:crypto';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { fromHex, toHex } from '../bytes.js';

declare const brand: unique symbol;
/** A base58check TRON address ("T…"). */
export type TronAddress = string & { readonly [brand]: 'TronAddress' };

export interface ParsedTronAddress {
  base58: TronAddress;
  /** "41" + 40 hex digits, lower case. */
  hex: string;
  /** The same 21 bytes. */
  bytes: Uint8Array;
}

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

function sha256(b: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(b).digest());
}

function base58Encode(b: Uint8Array): string {
  let n = BigInt(`0x${toHex(b) || '0'}`);
  let out = '';
  while (n > 0n) {
    out = ALPHABET[Number(n % 58n)]! + out;
    n /= 58n;
  }
  for (const byte of b) {
    if (byte !== 0) break;
    out = `1${out}`;
  }
  return out;
}

function base58Decode(s: string): Uint8Array | null {
  let n = 0n;
  for (const ch of s) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) return null;
    n = n * 58n + BigInt(v);
  }
  let hex = n === 0n ? '' : n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  const leading = /^1*/.exec(s)![0].length;
  return fromHex('00'.repeat(leading) + hex);
}

/**
 * Accepts base58 ("T…"), 21-byte hex ("41…", optional "0x") or 21 raw bytes; returns all three
 * forms, or null when the input is not a TRON address (bad prefix, length or checksum).
 */
export function parseTronAddress(input: string | Uint8Array): ParsedTronAddress | null {
  let bytes: Uint8Array | null;
  if (typeof input !== 'string') {
    bytes = input;
  } else if (/^(0x)?41[0-9a-fA-F]{40}$/.test(input)) {
    bytes = fromHex(input.replace(/^0x/, ''));
  } else if (/^T[1-9A-HJ-NP-Za-km-z]{33}$/.test(input)) {
    const raw = base58Decode(input);
    if (!raw || raw.length !== 25) return null;
    const body = raw.subarray(0, 21);
    const check = sha256(sha256(body)).subarray(0, 4);
    if (toHex(check) !== toHex(raw.subarray(21))) return null;
    bytes = body;
  } else {
    return null;
  }
  if (bytes.length !== 21 || bytes[0] !== 0x41) return null;
  const body = Uint8Array.from(bytes);
  const check = sha256(sha256(body)).subarray(0, 4);
  const full = new Uint8Array(25);
  full.set(body, 0);
  full.set(check, 21);
  return { base58: base58Encode(full) as TronAddress, hex: toHex(body), bytes: body };
}

/** The 21-byte TRON form of a 20-byte EVM address ("0x…" or bare hex). */
export function fromEvmAddress(evm: string): ParsedTronAddress | null {
  const m = /^(?:0x)?([0-9a-fA-F]{40})$/.exec(evm);
  return m ? parseTronAddress(`41${m[1]!.toLowerCase()}`) : null;
}

/**
 * The account of a TRON private key (64 hex digits), or null if it is not one: 0x41 ‖ the last 20
 * bytes of keccak256(the uncompressed secp256k1 public key without its 0x04), as Ethereum does.
 * Computed here (node:crypto for the curve) so that a client knows its address without tronweb.
 */
export function addressOfPrivateKey(privateKey: string): ParsedTronAddress | null {
  if (!/^[0-9a-fA-F]{64}$/.test(privateKey)) return null;
  let pub: Buffer;
  try {
    const ecdh = createECDH('secp256k1');
    ecdh.setPrivateKey(Buffer.from(privateKey, 'hex'));
    pub = ecdh.getPublicKey(null, 'uncompressed');
  } catch {
    return null; // zero, or not below the curve order
  }
  const h = keccak_256(pub.subarray(1));
  const bytes = new Uint8Array(21);
  bytes[0] = 0x41;
  bytes.set(h.subarray(12), 1);
  return parseTronAddress(bytes);
}
