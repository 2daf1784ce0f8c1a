/**
 * Record metadata: the on-chain `mailboxes` string. It is one of the fields the identity key signs
 * (see `verifyRegistryRecord`), so everything in it is covered by the record signature.
 *
 *   metadata = "" | part *(";" part)            at most MAX_METADATA_LENGTH bytes, ASCII
 *   part     = key "=" value                    each key at most once, in the order below
 *   m=<onion>,<onion>,…                          1..MAX_MAILBOXES mailbox providers, each a lower-case
 *                                                v3 onion address with ".onion", no duplicates
 *   h=1                                          hidden: the onion the identity key names is never
 *                                                published; reach this user through its mailbox
 *                                                providers (its contacts are told another onion)
 *   r=<base64url>                                a rotation statement (`encodeRotation`), base64url
 *                                                without padding
 *
 * Examples: "" (no mailboxes, no rotation), "m=abc…xyd.onion", "m=a….onion,b….onion;r=AQ…".
 * `encodeMetadata` writes the canonical form; `decodeMetadata` accepts only the canonical form of
 * `m` and `r`, and skips parts whose key is another single lower-case letter (reserved for later
 * versions, so an older client can still read a newer record).
 */
import { MAX_MAILBOXES, decodeRotation, encodeRotation, parseOnionAddress, type OnionAddress, type RotationStatement } from '../crypto/index.js';
import { RegistryError } from './errors.js';

export const MAX_METADATA_LENGTH = 1024;

export interface RecordMetadata {
  /** Mailbox providers (store-and-forward nodes) that accept messages for this identity. */
  mailboxes: OnionAddress[];
  /** The statement that moved this name from a previous identity key to the current one, if any. */
  rotation: RotationStatement | null;
  /** The user runs hidden (`h=1`): nobody is at the onion its identity key names. */
  hidden: boolean;
}

const bad = (what: string, cause?: unknown) => new RegistryError('BAD_RECORD', `bad record metadata: ${what}`, { cause });

export function encodeMetadata(meta: Partial<RecordMetadata>): string {
  const parts: string[] = [];
  const mailboxes = meta.mailboxes ?? [];
  if (mailboxes.length > MAX_MAILBOXES) throw bad(`more than ${MAX_MAILBOXES} mailboxes`);
  if (mailboxes.length > 0) {
    const onions = mailboxes.map((m) => {
      try {
        return parseOnionAddress(m).onion;
      } catch (err) {
        throw bad(`mailbox "${m}" is not an onion address`, err);
      }
    });
    if (new Set(onions).size !== onions.length) throw bad('duplicate mailbox');
    parts.push(`m=${onions.join(',')}`);
  }
  if (meta.hidden) parts.push('h=1');
  if (meta.rotation) parts.push(`r=${Buffer.from(encodeRotation(meta.rotation)).toString('base64url')}`);
  const out = parts.join(';');
  if (out.length > MAX_METADATA_LENGTH) throw bad(`longer than ${MAX_METADATA_LENGTH} bytes`);
  return out;
}

/** Parses the metadata string; throws RegistryError BAD_RECORD on anything but the format above. */
export function decodeMetadata(s: string): RecordMetadata {
  if (s.length > MAX_METADATA_LENGTH) throw bad(`longer than ${MAX_METADATA_LENGTH} bytes`);
  if (!/^[\x21-\x7e]*$/.test(s)) throw bad('not printable ASCII');
  const out: RecordMetadata = { mailboxes: [], rotation: null, hidden: false };
  if (s === '') return out;
  const seen: string[] = [];
  for (const part of s.split(';')) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    if (!/^[a-z]$/.test(key) || eq < 0) throw bad(`malformed part "${part.slice(0, 40)}"`);
    if (seen.includes(key)) throw bad(`"${key}" appears twice`);
    seen.push(key);
    if (key === 'm') {
      if (seen.includes('r') || seen.includes('h')) throw bad('"m" must come before "h" and "r"');
      out.mailboxes = decodeMailboxes(value);
    } else if (key === 'h') {
      if (seen.includes('r')) throw bad('"h" must come before "r"');
      if (value !== '1') throw bad('"h" is not "1"');
      out.hidden = true;
    } else if (key === 'r') {
      out.rotation = decodeRotationPart(value);
    }
  }
  return out;
}

function decodeMailboxes(value: string): OnionAddress[] {
  const items = value.split(',');
  if (items.length > MAX_MAILBOXES) throw bad(`more than ${MAX_MAILBOXES} mailboxes`);
  const out: OnionAddress[] = [];
  for (const item of items) {
    let onion: OnionAddress;
    try {
      onion = parseOnionAddress(item).onion;
    } catch (err) {
      throw bad(`mailbox "${item.slice(0, 70)}" is not an onion address`, err);
    }
    if (onion !== item) throw bad(`mailbox "${item.slice(0, 70)}" is not in canonical form`);
    if (out.includes(onion)) throw bad('duplicate mailbox');
    out.push(onion);
  }
  return out;
}

function decodeRotationPart(value: string): RotationStatement {
  if (!/^[A-Za-z0-9_-]+$/.test(value)) throw bad('rotation is not base64url');
  const bytes = new Uint8Array(Buffer.from(value, 'base64url'));
  if (Buffer.from(bytes).toString('base64url') !== value) throw bad('rotation is not canonical base64url');
  try {
    return decodeRotation(bytes);
  } catch (err) {
    throw bad('rotation statement does not parse', err);
  }
}
