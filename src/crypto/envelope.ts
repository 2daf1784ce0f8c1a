/**
 * The envelope: a signed inner message, padded to a size bucket and sealed to the recipient's
 * X25519 key (crypto_box_seal), so relays and mailboxes learn neither the sender nor the length.
 *
 * Inner message, version 1 (big-endian):
 *
 *   off  size   field
 *   0    1      version = 1
 *   1    1      kind: 1 mail, 2 chat, 3 read receipt (body = ids read)
 *   2    16     message id (random)
 *   18   8      created_at, ms since epoch
 *   26   8      expires_at, ms since epoch
 *   34   32     sender identity key (Ed25519)
 *   66   32     recipient identity key
 *   98   16     thread id (the thread's first message id; zeros = this message starts it)
 *   114  16     in-reply-to message id (zeros = none)
 *   130  2+n    subject, UTF-8, n ≤ 998
 *   …    4+n    body, UTF-8
 *   …    1      attachment count (0..16), each: u8+name, u8+media type, u32+data
 *   …    64     Ed25519 signature by the sender over every preceding byte, domain "message/v1"
 *
 * Padding: u32 length ‖ inner message ‖ zeros, to the smallest bucket in PADDING_BUCKETS that
 * fits. Sealed size = bucket + SEAL_OVERHEAD, so only those sizes are valid envelopes.
 *
 * Opening checks, cheapest first: envelope size, decryption, padding, parse, version, recipient,
 * timestamps, then the signature.
 */
import { ByteReader, ByteWriter, bytesEqual } from '../bytes.js';
import { PADDING_BUCKETS, SEAL_OVERHEAD } from '../limits.js';
import { CryptoError } from './errors.js';
import { onionAddress, sha256, signDomain, verifyDomain, type Identity, type IdentityKey, type OnionAddress } from './keys.js';
import { openSealed, sealTo } from './native.js';
import { checkLength, secureRandomBytes, type RandomBytes } from './sodium.js';

export const MESSAGE_VERSION = 1;
export const MAX_SUBJECT_BYTES = 998;
export const MAX_ATTACHMENTS = 16;
const ZERO_ID = new Uint8Array(16);

export type MessageKind = 'mail' | 'chat' | 'read';
const KIND_CODES: Record<MessageKind, number> = { mail: 1, chat: 2, read: 3 };
const KINDS_BY_CODE = new Map(Object.entries(KIND_CODES).map(([k, v]) => [v, k as MessageKind]));

export interface Attachment {
  name: string;
  mediaType: string;
  data: Uint8Array;
}

/** What a sender writes. */
export interface MessageDraft {
  kind: MessageKind;
  recipient: IdentityKey;
  subject: string;
  body: string;
  threadId?: Uint8Array;
  inReplyTo?: Uint8Array;
  attachments?: Attachment[];
  /** Defaults to 14 days after creation. */
  ttlMs?: number;
}

/** A verified inner message. */
export interface InnerMessage {
  kind: MessageKind;
  id: Uint8Array;
  createdAt: number;
  expiresAt: number;
  sender: IdentityKey;
  senderOnion: OnionAddress;
  recipient: IdentityKey;
  threadId: Uint8Array | null;
  inReplyTo: Uint8Array | null;
  subject: string;
  body: string;
  attachments: Attachment[];
}

export const DEFAULT_TTL_MS = 14 * 24 * 3600 * 1000;

/**
 * Bytes a message's subject, body and files may take together: the largest padding bucket minus
 * the padding's length prefix (4), the fixed header (130), the subject and body length fields
 * (2 + 4), the attachment count (1) and the signature (64). 261 939 bytes.
 */
export const MESSAGE_CAPACITY = PADDING_BUCKETS[PADDING_BUCKETS.length - 1]! - 4 - 130 - 2 - 4 - 1 - 64;

/**
 * What a message's content takes of MESSAGE_CAPACITY: the UTF-8 subject and body, and per file
 * its name and media type with their length fields (1 + 1 + 4) and its data. A message fits when
 * this is ≤ MESSAGE_CAPACITY (the web UI and the CLI say so before sending).
 */
export function messageContentSize(m: { subject: string; body: string; attachments?: readonly { name: string; mediaType: string; data: { length: number } }[] }): number {
  const enc = new TextEncoder();
  let n = enc.encode(m.subject).length + enc.encode(m.body).length;
  for (const a of m.attachments ?? []) n += 6 + enc.encode(a.name).length + enc.encode(a.mediaType).length + a.data.length;
  return n;
}

const badMessage = (what: string) => new CryptoError('BAD_MESSAGE', `bad message: ${what}`);

function encodeInner(m: Omit<InnerMessage, 'senderOnion'>): Uint8Array {
  const subject = new TextEncoder().encode(m.subject);
  if (subject.length > MAX_SUBJECT_BYTES) throw new CryptoError('TOO_LARGE', `subject longer than ${MAX_SUBJECT_BYTES} bytes`);
  if (m.attachments.length > MAX_ATTACHMENTS) throw new CryptoError('TOO_LARGE', `more than ${MAX_ATTACHMENTS} attachments`);
  const w = new ByteWriter()
    .u8(MESSAGE_VERSION)
    .u8(KIND_CODES[m.kind])
    .bytes(m.id)
    .u64(m.createdAt)
    .u64(m.expiresAt)
    .bytes(m.sender)
    .bytes(m.recipient)
    .bytes(m.threadId ?? ZERO_ID)
    .bytes(m.inReplyTo ?? ZERO_ID)
    .varBytes(subject, 16)
    .string(m.body, 32)
    .u8(m.attachments.length);
  for (const a of m.attachments) w.string(a.name, 8).string(a.mediaType, 8).varBytes(a.data, 32);
  return w.finish();
}

function decodeInner(bytes: Uint8Array): { message: Omit<InnerMessage, 'senderOnion'>; signed: Uint8Array; signature: Uint8Array } {
  const r = new ByteReader(bytes, badMessage);
  const version = r.u8('version');
  if (version !== MESSAGE_VERSION) throw new CryptoError('UNSUPPORTED_VERSION', `message version ${version} is not supported`);
  const kind = KINDS_BY_CODE.get(r.u8('kind'));
  if (!kind) throw badMessage('unknown kind');
  const id = Uint8Array.from(r.bytes(16, 'id'));
  const createdAt = r.u64('created_at');
  const expiresAt = r.u64('expires_at');
  const sender = Uint8Array.from(r.bytes(32, 'sender')) as IdentityKey;
  const recipient = Uint8Array.from(r.bytes(32, 'recipient')) as IdentityKey;
  const thread = Uint8Array.from(r.bytes(16, 'thread'));
  const reply = Uint8Array.from(r.bytes(16, 'in-reply-to'));
  const subject = r.string(16, MAX_SUBJECT_BYTES, 'subject');
  const body = r.string(32, PADDING_BUCKETS[PADDING_BUCKETS.length - 1]!, 'body');
  const n = r.u8('attachment count');
  if (n > MAX_ATTACHMENTS) throw badMessage('too many attachments');
  const attachments: Attachment[] = [];
  for (let i = 0; i < n; i++) {
    attachments.push({ name: r.string(8, 255, 'attachment name'), mediaType: r.string(8, 255, 'media type'), data: Uint8Array.from(r.varBytes(32, bytes.length, 'attachment')) });
  }
  const signedLength = r.offset;
  const signature = Uint8Array.from(r.bytes(64, 'signature'));
  r.end('message');
  return {
    message: {
      kind, id, createdAt, expiresAt, sender, recipient, subject, body, attachments,
      threadId: bytesEqual(thread, ZERO_ID) ? null : thread,
      inReplyTo: bytesEqual(reply, ZERO_ID) ? null : reply,
    },
    signed: bytes.subarray(0, signedLength),
    signature,
  };
}

/** Pads to the smallest bucket that fits `u32 length ‖ data`. */
export function pad(data: Uint8Array): Uint8Array {
  const need = data.length + 4;
  const bucket = PADDING_BUCKETS.find((b) => b >= need);
  if (bucket === undefined) throw new CryptoError('TOO_LARGE', `message of ${data.length} bytes exceeds the largest size bucket (${PADDING_BUCKETS[PADDING_BUCKETS.length - 1]! - 4})`);
  const out = new Uint8Array(bucket);
  new DataView(out.buffer).setUint32(0, data.length);
  out.set(data, 4);
  return out;
}

/** Inverse of `pad`; rejects a wrong length prefix, a non-bucket size or non-zero filler. */
export function unpad(padded: Uint8Array): Uint8Array {
  if (!(PADDING_BUCKETS as readonly number[]).includes(padded.length)) throw new CryptoError('BAD_PADDING', `padded size ${padded.length} is not a bucket`);
  const n = new DataView(padded.buffer, padded.byteOffset, padded.byteLength).getUint32(0);
  if (n > padded.length - 4) throw new CryptoError('BAD_PADDING', 'padding length prefix exceeds the bucket');
  let filler = 0;
  for (let i = 4 + n; i < padded.length; i++) filler |= padded[i]!;
  if (filler !== 0) throw new CryptoError('BAD_PADDING', 'non-zero padding bytes');
  return padded.subarray(4, 4 + n);
}

export interface SealedMessage {
  id: Uint8Array;
  envelope: Uint8Array;
  envelopeHash: Uint8Array;
  message: InnerMessage;
}

/**
 * Signs `draft` as `sender`, pads and seals it to the recipient's encryption key. `id` and
 * `expiresAt` may be given to seal a message that was queued earlier (its id and TTL fixed then).
 */
export function sealMessage(
  sender: Identity,
  recipientEncryptionKey: Uint8Array,
  draft: MessageDraft,
  opts: { now: number; random?: RandomBytes; id?: Uint8Array; expiresAt?: number },
): SealedMessage {
  checkLength(recipientEncryptionKey, 32, 'recipient encryption key');
  checkLength(draft.recipient, 32, 'recipient identity key');
  if (opts.id) checkLength(opts.id, 16, 'message id');
  const random = opts.random ?? secureRandomBytes;
  const message: Omit<InnerMessage, 'senderOnion'> = {
    kind: draft.kind,
    id: opts.id ? Uint8Array.from(opts.id) : random(16),
    createdAt: opts.now,
    expiresAt: opts.expiresAt ?? opts.now + (draft.ttlMs ?? DEFAULT_TTL_MS),
    sender: sender.identityKey,
    recipient: draft.recipient,
    threadId: draft.threadId ?? null,
    inReplyTo: draft.inReplyTo ?? null,
    subject: draft.subject,
    body: draft.body,
    attachments: draft.attachments ?? [],
  };
  const inner = encodeInner(message);
  const signature = signDomain(sender.signingKey, 'message/v1', inner);
  const padded = pad(new ByteWriter().bytes(inner).bytes(signature).finish());
  const envelope = sealTo(padded, recipientEncryptionKey);
  padded.fill(0);
  return { id: message.id, envelope, envelopeHash: sha256(envelope), message: { ...message, senderOnion: sender.onion } };
}

/** True when `n` is a size a sealed envelope can have. The cheapest check of all. */
export function isEnvelopeSize(n: number): boolean {
  return (PADDING_BUCKETS as readonly number[]).includes(n - SEAL_OVERHEAD);
}

/**
 * Opens an envelope sealed to `recipient` and verifies it. Throws a CryptoError whose code says
 * which check failed; nothing is returned unless every check passed.
 */
export function openMessage(recipient: Identity, envelope: Uint8Array, opts: { now: number; maxSkewMs: number }): InnerMessage {
  if (!isEnvelopeSize(envelope.length)) throw new CryptoError('ENVELOPE_SIZE', `envelope of ${envelope.length} bytes is not a bucket size`);
  const padded = openSealed(envelope, recipient.encryptionKey, recipient.encryptionSecret);
  const { message, signed, signature } = decodeInner(unpad(padded));
  if (!bytesEqual(message.recipient, recipient.identityKey)) throw new CryptoError('WRONG_RECIPIENT', 'message is addressed to another identity');
  if (message.createdAt > opts.now + opts.maxSkewMs) throw new CryptoError('CLOCK_SKEW', 'message created in the future beyond the allowed skew');
  if (message.expiresAt <= message.createdAt) throw new CryptoError('CLOCK_SKEW', 'message expires before it was created');
  if (message.expiresAt <= opts.now) throw new CryptoError('EXPIRED', 'message has expired');
  if (!verifyDomain(message.sender, 'message/v1', signed, signature)) throw new CryptoError('BAD_SIGNATURE', "sender's signature does not verify");
  return { ...message, senderOnion: onionAddress(message.sender) };
}

/**
 * Delivery receipt: the recipient's signature over (message id ‖ SHA-256(envelope)) under domain
 * "receipt/v1". Deterministic (Ed25519), so a duplicate delivery gets a byte-identical receipt.
 */
export function signReceipt(recipient: Identity, messageId: Uint8Array, envelopeHash: Uint8Array): Uint8Array {
  checkLength(messageId, 16, 'message id');
  checkLength(envelopeHash, 32, 'envelope hash');
  return signDomain(recipient.signingKey, 'receipt/v1', new ByteWriter().bytes(messageId).bytes(envelopeHash).finish());
}

export function verifyReceipt(recipientIdentity: Uint8Array, messageId: Uint8Array, envelopeHash: Uint8Array, signature: Uint8Array): void {
  if (!verifyDomain(recipientIdentity, 'receipt/v1', new ByteWriter().bytes(messageId).bytes(envelopeHash).finish(), signature)) {
    throw new CryptoError('BAD_RECEIPT', 'receipt is not signed by the recipient over this envelope');
  }
}

export { sha256 as envelopeHash };
