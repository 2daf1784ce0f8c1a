/**
 * Safety numbers: what two people compare, in person or over a call, to know that the keys their
 * nodes pinned for each other are the real ones (Signal's "numeric fingerprint", version 0 shape).
 *
 *   half(key)   = first 30 bytes of H^5200, where H^0 = "onionpost safety number v1" ‖ key
 *                 and H^(i+1) = SHA-512(H^i ‖ key), read as six 5-byte big-endian numbers, each
 *                 mod 100 000, written as 5 digits: 30 digits
 *   number(a,b) = the two halves sorted as strings and joined: 60 digits, shown in 12 groups of 5
 *
 * Sorting makes both sides compute the same number. The iterations make finding a key whose half
 * collides with a given one cost 2^(~100) · 5200 hashes rather than 2^100. It changes when either
 * identity key changes, so a key change means comparing again.
 */
import { createHash } from 'node:crypto';
import { CryptoError } from './errors.js';

const DOMAIN = new TextEncoder().encode('onionpost safety number v1');
const ITERATIONS = 5200;

function half(identityKey: Uint8Array): string {
  if (identityKey.length !== 32) throw new CryptoError('BAD_LENGTH', `identity key must be 32 bytes, got ${identityKey.length}`);
  let h: Uint8Array = new Uint8Array([...DOMAIN, ...identityKey]);
  for (let i = 0; i < ITERATIONS; i++) h = createHash('sha512').update(h).update(identityKey).digest();
  let out = '';
  for (let i = 0; i < 30; i += 5) {
    const n = h[i]! * 2 ** 32 + ((h[i + 1]! << 24) >>> 0) + (h[i + 2]! << 16) + (h[i + 3]! << 8) + h[i + 4]!;
    out += String(n % 100_000).padStart(5, '0');
  }
  return out;
}

/** The 60-digit safety number of two identity keys (order does not matter). */
export function safetyNumber(a: Uint8Array, b: Uint8Array): string {
  const [x, y] = [half(a), half(b)].sort();
  return x! + y!;
}

/** "12345 67890 …": twelve groups of five digits, for reading aloud. */
export function formatSafetyNumber(digits: string): string {
  return digits.match(/.{1,5}/g)?.join(' ') ?? '';
}
