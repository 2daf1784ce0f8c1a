/**
 * The mailbox protocol (PROTOCOL.md §14): what a user's node and a mailbox provider say to each
 * other on the provider's onion, WebSocket path `/mailbox/v1`, one binary message per frame. Pure
 * codecs, no I/O. Big-endian; every length is checked against its maximum before it is read.
 *
 * Every frame:
 *
 *    0         1         2                   6
 *   +---------+---------+-------------------+------------------------+
 *   | version |  type   | request id (u32)  | body (per type)        |
 *   |  u8 =1  |   u8    | chosen by client, |                        |
 *   |         |         | echoed by answers |                        |
 *   +---------+---------+-------------------+------------------------+
 *
 * Requests (client → provider), types 0x01–0x7f:
 *   0x01 SUBSCRIBE     identity 32 | time u64 | tag 32 (zeros: none) | sig 64      → TERMS
 *   0x02 CREATE_QUEUE  identity 32 | time u64 | queue 16 | write hash 32 (zeros: public) | read hash 32 | sig 64 → OK
 *   0x03 REMOVE_QUEUE  identity 32 | time u64 | queue 16 | sig 64                  → OK
 *   0x04 DEPOSIT       queue 16 | write cap 32 (zeros: public queue) | u32 n | envelope n → DEPOSITED
 *   0x05 FETCH         queue 16 | read cap 32 | after seq u64 | limit u16 (1..MAX_FETCH) → HELD
 *   0x06 ACK           queue 16 | read cap 32 | u16 n (1..MAX_ACK) | n × seq u64     → ACKED
 *   0x07 ACCOUNT       identity 32 | time u64 | sig 64                              → ACCOUNT_STATUS
 *   0x08 WATCH         queue 16 | read cap 32                                      → OK, then NOTIFYs
 *   0x09 PUT_BUNDLE    identity 32 | time u64 | flags u8 (bit 0: replace the prekeys held; others 0) |
 *                      u16 len (1370..1874) | bundle len | u8 n (0..MAX_PUT_PREKEYS) |
 *                      n × (prekey id u32 | prekey 32) | sig 64                      → BUNDLE_KEPT
 *   0x0a GET_BUNDLE    identity 32 (whose bundle; anonymous)                       → BUNDLE
 * Answers (provider → client), types 0x80–0xff:
 *   0x81 TERMS         retention ms u64 | quota bytes u64 | time u64 | sig 64 (provider)
 *   0x82 OK            (empty)
 *   0x83 DEPOSITED     seq u64 | digest 32 | deposited at u64 | expires at u64 | sig 64 (provider)
 *   0x84 HELD          u16 n | n × (seq u64 | deposited at u64 | u32 len | envelope)
 *   0x85 ACKED         count u32
 *   0x86 ACCOUNT_STATUS paid until u64 (0: free provider) | grace ms u64 | held count u32 |
 *                      held bytes u64 | quota bytes u64 | time u64 | sig 64 (provider)
 *   0x87 NOTIFY        queue 16  (request id = the WATCH's; unsolicited: mail came for that queue)
 *   0x88 BUNDLE_KEPT   prekeys u16 (one-time prekeys the provider holds for the subscriber now)
 *   0x89 BUNDLE        u16 len (1370..1874) | bundle len | u8 c (0/1) | c × (prekey id u32 | prekey 32)
 *                      (from `bundle` on, exactly a bundle answer, PROTOCOL.md §3)
 *   0xff ERROR         code u8 | retryable u8 (0/1) | u8 len | reason (UTF-8, ≤ 200)
 *
 * Signatures (Ed25519, `signDomain` domains) are in statements.ts. Times are ms since the epoch.
 */
import { ByteReader, ByteWriter } from '../bytes.js';
import { ProviderError } from './errors.js';

export const MAILBOX_WIRE_VERSION = 1;
export const MAILBOX_PATH = '/mailbox/v1';
export const HEADER_BYTES = 6;
/** Envelopes returned by one FETCH at most. */
export const MAX_FETCH = 64;
/** Sequence numbers one ACK may carry. */
export const MAX_ACK = 1024;
export const MAX_REASON_BYTES = 200;
/** One-time prekeys one PUT_BUNDLE carries at most. */
export const MAX_PUT_PREKEYS = 100;
/** Smallest and largest key bundle (version 2 with 0 and 8 mailboxes, PROTOCOL.md §3). */
export const MIN_BUNDLE_BYTES = 1370;
export const MAX_BUNDLE_BYTES = 1370 + 63 * 8;
/** PUT_BUNDLE flag: the provider drops the one-time prekeys it holds before taking these. */
export const PUT_REPLACE = 0x01;

/** Error codes of an ERROR answer: part of the wire format, never renumbered. */
export const MailboxErrorCode = Object.freeze({
  MALFORMED: 1,
  NO_CAPABILITY: 2,
  OVER_QUOTA: 3,
  BAD_SIZE: 4,
  TOO_MANY_USERS: 5,
  TOO_MANY_QUEUES: 6,
  NOT_SUBSCRIBED: 7,
  QUEUE_EXISTS: 8,
  BAD_SIGNATURE: 9,
  STALE: 10,
  RATE_LIMITED: 11,
  BUSY: 12,
  INTERNAL: 13,
  NOT_PAID: 14,
  NO_BUNDLE: 15,
  BAD_BUNDLE: 16,
});
export type MailboxErrorCode = (typeof MailboxErrorCode)[keyof typeof MailboxErrorCode];

export function mailboxErrorName(code: number): string {
  for (const [k, v] of Object.entries(MailboxErrorCode)) if (v === code) return k;
  return `UNKNOWN_${code}`;
}

export type MailboxRequest =
  | { type: 'SUBSCRIBE'; identity: Uint8Array; time: number; tag: Uint8Array | null; sig: Uint8Array }
  | { type: 'CREATE_QUEUE'; identity: Uint8Array; time: number; queue: Uint8Array; writeHash: Uint8Array | null; readHash: Uint8Array; sig: Uint8Array }
  | { type: 'REMOVE_QUEUE'; identity: Uint8Array; time: number; queue: Uint8Array; sig: Uint8Array }
  | { type: 'DEPOSIT'; queue: Uint8Array; writeCap: Uint8Array | null; envelope: Uint8Array }
  | { type: 'FETCH'; queue: Uint8Array; readCap: Uint8Array; afterSeq: number; limit: number }
  | { type: 'ACK'; queue: Uint8Array; readCap: Uint8Array; seqs: number[] }
  | { type: 'ACCOUNT'; identity: Uint8Array; time: number; sig: Uint8Array }
  | { type: 'WATCH'; queue: Uint8Array; readCap: Uint8Array }
  | { type: 'PUT_BUNDLE'; identity: Uint8Array; time: number; replace: boolean; bundle: Uint8Array; prekeys: BundlePrekey[]; sig: Uint8Array }
  | { type: 'GET_BUNDLE'; identity: Uint8Array };

/** A one-time prekey's public half, as PUT_BUNDLE and BUNDLE carry it. */
export interface BundlePrekey {
  id: number;
  public: Uint8Array;
}

export interface HeldItem {
  seq: number;
  depositedAt: number;
  envelope: Uint8Array;
}

/**
 * What a provider says of one subscriber's account (ACCOUNT_STATUS, PROTOCOL.md §14.1): signed, so
 * a user can show what its provider told it.
 */
export interface AccountStatusFields {
  /** When the subscription is paid until, ms since the epoch; 0: a free provider (nothing to pay). */
  paidUntil: number;
  /** How long past paidUntil the provider still serves, ms. */
  graceMs: number;
  /** Envelopes it holds for the subscriber (in all its queues), and their bytes. */
  heldCount: number;
  heldBytes: number;
  /** The most it holds for the subscriber, bytes. */
  quotaBytes: number;
  /** When the provider said this, ms since the epoch. */
  time: number;
}

export type MailboxAnswer =
  | { type: 'TERMS'; retentionMs: number; quotaBytes: number; time: number; sig: Uint8Array }
  | { type: 'OK' }
  | { type: 'DEPOSITED'; seq: number; digest: Uint8Array; depositedAt: number; expiresAt: number; sig: Uint8Array }
  | { type: 'HELD'; items: HeldItem[] }
  | { type: 'ACKED'; count: number }
  | ({ type: 'ACCOUNT_STATUS' } & AccountStatusFields & { sig: Uint8Array })
  | { type: 'NOTIFY'; queue: Uint8Array }
  | { type: 'BUNDLE_KEPT'; prekeys: number }
  | { type: 'BUNDLE'; bundle: Uint8Array; prekey: BundlePrekey | null }
  | { type: 'ERROR'; code: number; retryable: boolean; reason: string };

export type MailboxFrame = (MailboxRequest | MailboxAnswer) & { id: number };

const TYPE_IDS = {
  SUBSCRIBE: 0x01, CREATE_QUEUE: 0x02, REMOVE_QUEUE: 0x03, DEPOSIT: 0x04, FETCH: 0x05, ACK: 0x06, ACCOUNT: 0x07, WATCH: 0x08,
  PUT_BUNDLE: 0x09, GET_BUNDLE: 0x0a,
  TERMS: 0x81, OK: 0x82, DEPOSITED: 0x83, HELD: 0x84, ACKED: 0x85, ACCOUNT_STATUS: 0x86, NOTIFY: 0x87, BUNDLE_KEPT: 0x88, BUNDLE: 0x89,
  ERROR: 0xff,
} as const;
const BY_ID = new Map(Object.entries(TYPE_IDS).map(([k, v]) => [v as number, k as keyof typeof TYPE_IDS]));
const ZERO32 = new Uint8Array(32);

/** True for request types (what a provider serves). */
export function isRequest(f: MailboxFrame): f is MailboxRequest & { id: number } {
  return TYPE_IDS[f.type] < 0x80;
}

const isZero = (b: Uint8Array) => b.every((x) => x === 0);
const fail = (what: string) => new ProviderError('MALFORMED', `malformed mailbox frame: ${what}`);

/** A bundle's length is checked by the codec; whether it parses and verifies, by the provider (BAD_BUNDLE) and the sender. */
function checkBundleLength(n: number): void {
  if (n < MIN_BUNDLE_BYTES || n > MAX_BUNDLE_BYTES || (n - MIN_BUNDLE_BYTES) % 63 !== 0) throw fail(`a bundle of ${n} bytes`);
}

export function encodeMailboxFrame(f: MailboxFrame, maxEnvelope: number): Uint8Array {
  const w = new ByteWriter().u8(MAILBOX_WIRE_VERSION).u8(TYPE_IDS[f.type]).u32(f.id >>> 0);
  switch (f.type) {
    case 'SUBSCRIBE':
      return w.bytes(f.identity).u64(f.time).bytes(f.tag ?? ZERO32).bytes(f.sig).finish();
    case 'CREATE_QUEUE':
      return w.bytes(f.identity).u64(f.time).bytes(f.queue).bytes(f.writeHash ?? ZERO32).bytes(f.readHash).bytes(f.sig).finish();
    case 'REMOVE_QUEUE':
      return w.bytes(f.identity).u64(f.time).bytes(f.queue).bytes(f.sig).finish();
    case 'DEPOSIT':
      if (f.envelope.length > maxEnvelope) throw new ProviderError('BAD_SIZE', `envelope of ${f.envelope.length} bytes exceeds ${maxEnvelope}`);
      return w.bytes(f.queue).bytes(f.writeCap ?? ZERO32).varBytes(f.envelope, 32).finish();
    case 'FETCH':
      return w.bytes(f.queue).bytes(f.readCap).u64(f.afterSeq).u16(f.limit).finish();
    case 'ACK':
      w.bytes(f.queue).bytes(f.readCap).u16(f.seqs.length);
      for (const s of f.seqs) w.u64(s);
      return w.finish();
    case 'ACCOUNT':
      return w.bytes(f.identity).u64(f.time).bytes(f.sig).finish();
    case 'WATCH':
      return w.bytes(f.queue).bytes(f.readCap).finish();
    case 'PUT_BUNDLE': {
      checkBundleLength(f.bundle.length);
      if (f.prekeys.length > MAX_PUT_PREKEYS) throw fail(`${f.prekeys.length} prekeys, more than ${MAX_PUT_PREKEYS}`);
      w.bytes(f.identity).u64(f.time).u8(f.replace ? PUT_REPLACE : 0).varBytes(f.bundle, 16).u8(f.prekeys.length);
      for (const k of f.prekeys) w.u32(k.id).bytes(k.public);
      return w.bytes(f.sig).finish();
    }
    case 'GET_BUNDLE':
      return w.bytes(f.identity).finish();
    case 'BUNDLE_KEPT':
      return w.u16(f.prekeys).finish();
    case 'BUNDLE':
      checkBundleLength(f.bundle.length);
      w.varBytes(f.bundle, 16);
      return (f.prekey ? w.u8(1).u32(f.prekey.id).bytes(f.prekey.public) : w.u8(0)).finish();
    case 'NOTIFY':
      return w.bytes(f.queue).finish();
    case 'TERMS':
      return w.u64(f.retentionMs).u64(f.quotaBytes).u64(f.time).bytes(f.sig).finish();
    case 'OK':
      return w.finish();
    case 'DEPOSITED':
      return w.u64(f.seq).bytes(f.digest).u64(f.depositedAt).u64(f.expiresAt).bytes(f.sig).finish();
    case 'HELD':
      w.u16(f.items.length);
      for (const i of f.items) w.u64(i.seq).u64(i.depositedAt).varBytes(i.envelope, 32);
      return w.finish();
    case 'ACKED':
      return w.u32(f.count).finish();
    case 'ACCOUNT_STATUS':
      return w.u64(f.paidUntil).u64(f.graceMs).u32(f.heldCount).u64(f.heldBytes).u64(f.quotaBytes).u64(f.time).bytes(f.sig).finish();
    case 'ERROR': {
      let r = f.reason;
      while (new TextEncoder().encode(r).length > MAX_REASON_BYTES) r = Array.from(r).slice(0, -1).join('');
      return w.u8(f.code).u8(f.retryable ? 1 : 0).string(r, 8).finish();
    }
  }
}

/**
 * Decodes one frame of either direction. Throws ProviderError MALFORMED for anything that is not
 * exactly one valid frame (wrong version, unknown type, truncated, trailing bytes, out-of-range
 * counts, a u64 over 2^53 − 1, a reason that is not UTF-8), BAD_SIZE for an envelope longer than
 * `maxEnvelope` (checked from its length prefix, before it is read). A provider or a client uses
 * decodeMailboxRequest or decodeMailboxAnswer, which also refuse the other direction's types.
 */
export function decodeMailboxFrame(bytes: Uint8Array, maxEnvelope: number): MailboxFrame {
  const r = new ByteReader(bytes, fail);
  const version = r.u8('version');
  if (version !== MAILBOX_WIRE_VERSION) throw fail(`version ${version}`);
  const type = BY_ID.get(r.u8('type'));
  if (!type) throw fail('unknown type');
  const id = r.u32('request id');
  const b32 = (what: string) => Uint8Array.from(r.bytes(32, what));
  const b16 = (what: string) => Uint8Array.from(r.bytes(16, what));
  const sig = () => Uint8Array.from(r.bytes(64, 'signature'));
  const readBundle = () => {
    const n = r.u16('bundle length');
    checkBundleLength(n);
    return Uint8Array.from(r.bytes(n, 'bundle'));
  };
  let f: MailboxFrame;
  switch (type) {
    case 'SUBSCRIBE': {
      const identity = b32('identity');
      const time = r.u64('time');
      const tag = b32('tag');
      f = { type, id, identity, time, tag: isZero(tag) ? null : tag, sig: sig() };
      break;
    }
    case 'CREATE_QUEUE': {
      const identity = b32('identity');
      const time = r.u64('time');
      const queue = b16('queue');
      const writeHash = b32('write hash');
      f = { type, id, identity, time, queue, writeHash: isZero(writeHash) ? null : writeHash, readHash: b32('read hash'), sig: sig() };
      break;
    }
    case 'REMOVE_QUEUE':
      f = { type, id, identity: b32('identity'), time: r.u64('time'), queue: b16('queue'), sig: sig() };
      break;
    case 'DEPOSIT': {
      const queue = b16('queue');
      const cap = b32('write capability');
      const n = r.u32('envelope length');
      if (n > maxEnvelope) throw new ProviderError('BAD_SIZE', `envelope of ${n} bytes exceeds ${maxEnvelope}`);
      f = { type, id, queue, writeCap: isZero(cap) ? null : cap, envelope: Uint8Array.from(r.bytes(n, 'envelope')) };
      break;
    }
    case 'FETCH': {
      const queue = b16('queue');
      const readCap = b32('read capability');
      const afterSeq = r.u64('after');
      const limit = r.u16('limit');
      if (limit < 1 || limit > MAX_FETCH) throw fail(`fetch limit ${limit} outside 1..${MAX_FETCH}`);
      f = { type, id, queue, readCap, afterSeq, limit };
      break;
    }
    case 'ACK': {
      const queue = b16('queue');
      const readCap = b32('read capability');
      const n = r.u16('count');
      if (n < 1 || n > MAX_ACK) throw fail(`ack count ${n} outside 1..${MAX_ACK}`);
      const seqs: number[] = [];
      for (let i = 0; i < n; i++) seqs.push(r.u64('seq'));
      f = { type, id, queue, readCap, seqs };
      break;
    }
    case 'ACCOUNT':
      f = { type, id, identity: b32('identity'), time: r.u64('time'), sig: sig() };
      break;
    case 'WATCH':
      f = { type, id, queue: b16('queue'), readCap: b32('read capability') };
      break;
    case 'PUT_BUNDLE': {
      const identity = b32('identity');
      const time = r.u64('time');
      const flags = r.u8('flags');
      if ((flags & ~PUT_REPLACE) !== 0) throw fail(`unknown PUT_BUNDLE flags ${flags}`);
      const bundle = readBundle();
      const n = r.u8('prekey count');
      if (n > MAX_PUT_PREKEYS) throw fail(`${n} prekeys, more than ${MAX_PUT_PREKEYS}`);
      const prekeys: BundlePrekey[] = [];
      for (let i = 0; i < n; i++) prekeys.push({ id: r.u32('prekey id'), public: b32('prekey') });
      f = { type, id, identity, time, replace: flags === PUT_REPLACE, bundle, prekeys, sig: sig() };
      break;
    }
    case 'GET_BUNDLE':
      f = { type, id, identity: b32('identity') };
      break;
    case 'BUNDLE_KEPT':
      f = { type, id, prekeys: r.u16('prekeys') };
      break;
    case 'BUNDLE': {
      const bundle = readBundle();
      const c = r.u8('prekey count');
      if (c > 1) throw fail('more than one one-time prekey');
      f = { type, id, bundle, prekey: c === 1 ? { id: r.u32('prekey id'), public: b32('prekey') } : null };
      break;
    }
    case 'NOTIFY':
      f = { type, id, queue: b16('queue') };
      break;
    case 'TERMS':
      f = { type, id, retentionMs: r.u64('retention'), quotaBytes: r.u64('quota'), time: r.u64('time'), sig: sig() };
      break;
    case 'OK':
      f = { type, id };
      break;
    case 'DEPOSITED':
      f = { type, id, seq: r.u64('seq'), digest: b32('digest'), depositedAt: r.u64('deposited at'), expiresAt: r.u64('expires at'), sig: sig() };
      break;
    case 'HELD': {
      const n = r.u16('count');
      if (n > MAX_FETCH) throw fail(`${n} held envelopes, more than ${MAX_FETCH}`);
      const items: HeldItem[] = [];
      for (let i = 0; i < n; i++) {
        const seq = r.u64('seq');
        const depositedAt = r.u64('deposited at');
        const len = r.u32('envelope length');
        if (len > maxEnvelope) throw new ProviderError('BAD_SIZE', `held envelope of ${len} bytes exceeds ${maxEnvelope}`);
        items.push({ seq, depositedAt, envelope: Uint8Array.from(r.bytes(len, 'envelope')) });
      }
      f = { type, id, items };
      break;
    }
    case 'ACKED':
      f = { type, id, count: r.u32('count') };
      break;
    case 'ACCOUNT_STATUS':
      f = {
        type, id, paidUntil: r.u64('paid until'), graceMs: r.u64('grace'), heldCount: r.u32('held count'), heldBytes: r.u64('held bytes'),
        quotaBytes: r.u64('quota'), time: r.u64('time'), sig: sig(),
      };
      break;
    case 'ERROR': {
      const code = r.u8('code');
      const flag = r.u8('retryable');
      if (flag > 1) throw fail('retryable must be 0 or 1');
      f = { type, id, code, retryable: flag === 1, reason: r.string(8, MAX_REASON_BYTES, 'reason') };
      break;
    }
  }
  r.end('frame');
  return f;
}

/**
 * Decodes a frame a provider received. An answer type is an unknown type there (PROTOCOL.md §14.1):
 * MALFORMED, like any frame that does not decode.
 */
export function decodeMailboxRequest(bytes: Uint8Array, maxEnvelope: number): MailboxRequest & { id: number } {
  const f = decodeMailboxFrame(bytes, maxEnvelope);
  if (!isRequest(f)) throw fail(`${f.type} is an answer, not a request`);
  return f;
}

/** Decodes a frame a client received. A request type is an unknown type there: MALFORMED. */
export function decodeMailboxAnswer(bytes: Uint8Array, maxEnvelope: number): MailboxAnswer & { id: number } {
  const f = decodeMailboxFrame(bytes, maxEnvelope);
  if (isRequest(f)) throw fail(`${f.type} is a request, not an answer`);
  return f as MailboxAnswer & { id: number };
}
