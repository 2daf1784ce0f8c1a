/**
 * Helpers for the registry's ABI that every client needs: commitments and revert reasons. No
 * tronweb here (keccak from @noble/hashes, a revert string decoded by hand), so that reading the
 * deployments file or checking a name does not load it.
 */
import { keccak_256 } from '@noble/hashes/sha3.js';

/**
 * Every reason string the registry reverts with. There is no NOT_OWNER: owner-only functions act on
 * msg.sender's own record, so a non-owner gets NO_RECORD.
 */
export const REGISTRY_REVERT_REASONS = [
  'NAME_INVALID', 'NAME_TAKEN', 'ALREADY_REGISTERED', 'NO_COMMITMENT', 'COMMITMENT_TOO_NEW', 'COMMITMENT_TOO_OLD',
  'BAD_VERSION', 'NO_RECORD', 'BAD_KEY', 'MAILBOXES_TOO_LONG', 'SIG_LENGTH', 'BAD_OWNER', 'BAD_AGES',
] as const;
export type RegistryRevertReason = (typeof REGISTRY_REVERT_REASONS)[number];

/** Limits the contract enforces (mirrors the constants in IdentityRegistry.sol). */
export const REGISTRY_LIMITS = Object.freeze({ maxNameLength: 64, maxMailboxesLength: 1024, signatureLength: 64 });

/** The name rule the contract enforces: 1-64 of [a-z0-9-], not starting or ending with '-'. */
export function isValidRegistryName(name: string): boolean {
  return /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/.test(name);
}

/**
 * The value to pass to `commit(bytes32)`: keccak256(abi.encodePacked(name, owner, secret)), with the
 * owner as its 20 EVM bytes (41-hex or 0x-hex accepted) and a 32-byte secret. Returns 0x-hex.
 */
export function registryCommitment(name: string, owner: string, secret: Uint8Array): string {
  if (secret.length !== 32) throw new RangeError('secret must be 32 bytes');
  const ownerHex = owner.replace(/^0x/, '').replace(/^41(?=[0-9a-fA-F]{40}$)/, '');
  if (!/^[0-9a-fA-F]{40}$/.test(ownerHex)) throw new RangeError('owner must be a 41-hex or 0x-hex address');
  const packed = Buffer.concat([Buffer.from(name, 'utf8'), Buffer.from(ownerHex, 'hex'), Buffer.from(secret)]);
  return '0x' + Buffer.from(keccak_256(packed)).toString('hex');
}

/**
 * The reason of a revert from its return data (TransactionInfo.contractResult[0] or a constant call's
 * constant_result[0], hex with or without 0x): the string of `Error(string)`, or undefined when the
 * data is empty or not an Error(string) (a panic or custom error).
 */
export function decodeRevertReason(data: string | undefined): string | undefined {
  const hex = (data ?? '').replace(/^0x/, '').toLowerCase();
  if (!hex.startsWith('08c379a0') || hex.length < 8 + 128) return undefined;
  try {
    return abiString(hex.slice(8));
  } catch {
    return undefined;
  }
}

/** An ABI-encoded `string` (offset word, then length word and UTF-8 bytes); throws when malformed. */
function abiString(dataHex: string): string {
  if (!/^(?:[0-9a-f]{2})*$/.test(dataHex)) throw new TypeError('not hex');
  const data = Buffer.from(dataHex, 'hex');
  const word = (at: number): number => {
    if (at + 32 > data.length) throw new RangeError('ABI data too short');
    const w = BigInt(`0x${data.subarray(at, at + 32).toString('hex')}`);
    if (w > BigInt(data.length)) throw new RangeError('ABI offset or length out of range');
    return Number(w);
  };
  const offset = word(0);
  const length = word(offset);
  if (offset + 32 + length > data.length) throw new RangeError('ABI string runs past its data');
  return new TextDecoder('utf-8', { fatal: true }).decode(data.subarray(offset + 32, offset + 32 + length));
}
