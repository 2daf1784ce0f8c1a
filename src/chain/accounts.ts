import { addressOfPrivateKey, sha256Hex, toBase58 } from './tron.js';

/** A prefunded dev account. `privateKey` is 32 bytes hex without 0x; never log it. */
export interface DevAccount {
  /** Base58 (T…), what users and tronweb's defaultAddress use. */
  address: string;
  /** 41-hex, as in transaction JSON. */
  hexAddress: string;
  privateKey: string;
}

export const DEFAULT_SEED = 'onionpost dev chain';

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/**
 * The dev accounts for `seed`: private key i = sha256(`${seed}/${i}`), re-hashed in the (never yet
 * seen) case it falls outside the curve order. Same seed, same accounts, on every machine and run.
 */
export function deriveDevAccounts(seed: string, count: number): DevAccount[] {
  const out: DevAccount[] = [];
  for (let i = 0; i < count; i++) {
    let key = sha256Hex(`${seed}/${i}`);
    for (let tries = 0; tries < 8 && (BigInt('0x' + key) === 0n || BigInt('0x' + key) >= SECP256K1_N); tries++) key = sha256Hex(key);
    const hexAddress = addressOfPrivateKey(key);
    out.push({ address: toBase58(hexAddress), hexAddress, privateKey: key });
  }
  return out;
}
