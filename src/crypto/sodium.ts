/**
 * libsodium (sumo build: it has crypto_pwhash/Argon2id) behind a ready check. The wasm module is
 * a process-wide, immutable library once initialised; every crypto function calls `sodium()`, which
 * throws NOT_READY before `cryptoReady()` has resolved, instead of failing obscurely.
 */
import _sodium from 'libsodium-wrappers-sumo';
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { CryptoError } from './errors.js';

export type Sodium = typeof _sodium;

let loaded: Sodium | undefined;

/** Resolves once libsodium is usable. Safe to call any number of times. */
export async function cryptoReady(): Promise<void> {
  await _sodium.ready;
  loaded = _sodium;
}

export function sodium(): Sodium {
  if (!loaded) throw new CryptoError('NOT_READY', 'crypto used before cryptoReady() resolved');
  return loaded;
}

/** Source of randomness, injectable so tests can be deterministic. */
export type RandomBytes = (n: number) => Uint8Array;

export const secureRandomBytes: RandomBytes = (n) => new Uint8Array(nodeRandomBytes(n));

/** Zeroes a secret in place (best effort: JS may have copied it elsewhere). */
export function wipe(b: Uint8Array | undefined): void {
  if (b) b.fill(0);
}

export function checkLength(b: Uint8Array, n: number, what: string): void {
  if (!(b instanceof Uint8Array) || b.length !== n) {
    throw new CryptoError('BAD_LENGTH', `${what} must be ${n} bytes, got ${b instanceof Uint8Array ? b.length : typeof b}`);
  }
}
