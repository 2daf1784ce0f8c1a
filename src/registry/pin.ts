/**
 * The pinning policy (trust on first use), as a pure function. The node keeps one pin per contact
 * (identity key, encryption key, version) in its store and calls `comparePin` with every fresh
 * record it resolves:
 *
 *   pinned   fresh record                                           → verdict
 *   none     any                                                    → new       (pin it)
 *   key K    key K, same version, same encryption key               → same
 *   key K    key K, higher version                                  → updated   (signed by K: accept, re-pin)
 *   key K    key K, lower version                                   → conflict  (rollback: a stale or lying endpoint)
 *   key K    key K, same version, other encryption key              → conflict  (two records for one version)
 *   key K    key K', rotation statement K → K' signed by K and K'   → rotated   (accept, re-pin K')
 *   key K    key K', no statement, or one not signed by K           → conflict  (hold messages, ask the user)
 *
 * On 'conflict' the node keeps the old pin, holds outgoing messages and warns the user, who may
 * approve the new key explicitly.
 */
import { CryptoError, verifyRotation, type RotationStatement } from '../crypto/index.js';
import { bytesEqual } from '../bytes.js';
import type { VerifiedRecord } from './record.js';

export interface Pin {
  identityKey: Uint8Array;
  encryptionKey: Uint8Array;
  version: number;
}

export type PinVerdict =
  | { kind: 'new' }
  | { kind: 'same' }
  | { kind: 'updated' }
  | { kind: 'rotated'; rotation: RotationStatement }
  | { kind: 'conflict'; reason: string };

export function comparePin(pinned: Pin | null, fresh: VerifiedRecord): PinVerdict {
  if (!pinned) return { kind: 'new' };
  if (bytesEqual(pinned.identityKey, fresh.identityKey)) {
    if (fresh.version < pinned.version) {
      return { kind: 'conflict', reason: `version rollback: pinned version ${pinned.version}, registry says ${fresh.version}` };
    }
    if (fresh.version > pinned.version) return { kind: 'updated' };
    if (bytesEqual(pinned.encryptionKey, fresh.encryptionKey)) return { kind: 'same' };
    return { kind: 'conflict', reason: `version ${fresh.version} seen with two different encryption keys` };
  }
  const r = fresh.rotation;
  if (!r) return { kind: 'conflict', reason: 'identity key changed without a rotation statement' };
  if (!bytesEqual(r.newIdentity, fresh.identityKey)) return { kind: 'conflict', reason: 'rotation statement is for another key' };
  try {
    verifyRotation(r, pinned.identityKey);
  } catch (err) {
    if (!(err instanceof CryptoError)) throw err;
    return { kind: 'conflict', reason: `identity key changed and the rotation statement is not valid: ${err.message}` };
  }
  return { kind: 'rotated', rotation: r };
}
