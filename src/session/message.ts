/**
 * The inner message, version 2 (PROTOCOL.md §9.1), and the padding that makes a whole envelope a
 * size bucket (§9). No sender, recipient or signature inside: the session says who the parties are.
 *
 *   off  size   field
 *   0    1      version = 2
 *   1    1      kind: 1 mail, 2 chat; control messages (control.ts, §9.2): 3 read receipt, 4 queue handout,
 *                5 direct onion
 *   2    16     message id
 *   18   8      created_at, ms
 *   26   8      expires_at, ms
 *   34   16     thread id (zeros = this message starts it)
 *   50   16     in-reply-to id (zeros = none)
 *   66   2+n    subject (u16 n, UTF-8, n ≤ 998)
 *   …    4+n    body (u32 n, UTF-8)
 *   …    1      attachment count (0..16), each: u8+name, u8+media type, u32+data
 *
 * Padded plaintext (inside the body AEAD): u32 n ‖ inner (n bytes) ‖ zeros, to the length that makes
 * the envelope a bucket.
 */
import { ByteReader, ByteWriter, bytesEqual } from '../bytes.js';
import { PADDING_BUCKETS } from '../limits.js';
import { MAX_BUNDLE_BYTES } from './bundle.js';
import { SessionError } from './errors.js';
import { checkLength } from './primitives.js';

export const MESSAGE_V2 = 2;
export const MAX_SUBJECT_BYTES = 998;
export const MAX_ATTACHMENTS = 16;
const ZERO_ID = new Uint8Array(16);

export type MessageKind = 'mail' | 'chat' | 'read' | 'queues' | 'onion';

/** A file a message carries. */
export interface Attachment {
  name: string;
  mediaType: string;
  data: Uint8Array;
}

/** The inner message's bytes besides subject, body and files: header (66), their lengths (2 + 4), the file count (1). */
const INNER_FIXED_BYTES = 66 + 2 + 4 + 1;
/**
 * The longest envelope prefix: an INIT whose sealed bundle lists 8 mailboxes (PROTOCOL.md §5):
 * 1136 fixed bytes, the sealed bundle, the 68-byte encrypted header.
 */
const MAX_PREFIX_BYTES = 1136 + MAX_BUNDLE_BYTES + 16 + 68;

/**
 * Bytes a message's subject, body and files may take together so that it fits the largest bucket
 * in any envelope, the longest INIT included (a message may become an INIT when a session is
 * reset): the top bucket minus the longest prefix, the body's AEAD tag (16), the padding's length
 * field (4) and the inner message's fixed fields. 258 957 bytes.
 */
export const MESSAGE_CAPACITY = PADDING_BUCKETS[PADDING_BUCKETS.length - 1]! - MAX_PREFIX_BYTES - 16 - 4 - INNER_FIXED_BYTES;

/**
 * What a message's content takes of MESSAGE_CAPACITY: the UTF-8 subject and body, and per file
 * its name and media type with their length fields (1 + 1 + 4) and its data. A message fits when
 * this is ≤ MESSAGE_CAPACITY (the node refuses a larger one before queueing it).
 */
export function messageContentSize(m: { subject: string; body: string; attachments?: readonly { name: string; mediaType: string; data: { length: number } }[] }): number {
  const enc = new TextEncoder();
  let n = enc.encode(m.subject).length + enc.encode(m.body).length;
  for (const a of m.attachments ?? []) n += 6 + enc.encode(a.name).length + enc.encode(a.mediaType).length + a.data.length;
  return n;
}

/**
 * A new message id (16 bytes): created_at as 6 big-endian bytes (ms), then 10 random bytes.
 *
 * Only uniqueness matters to the protocol (PROTOCOL.md §9.1: a receiver relies on no structure), and
 * the time says nothing the message's own created_at doesn't already tell the one party that sees
 * the id (it travels only inside the session's encryption and in DELIVER and RECEIPT frames to and
 * from the recipient; mailbox providers never see it). Time first makes the ids of messages written
 * together sort together, so the B-tree pages of every index keyed by message id (both nodes keep
 * about ten) are shared by a batch instead of one random leaf per message and index: about half of
 * the pages each side writes per message (README, "Where the pipeline's time goes"). 80 random bits
 * keep ids of the same millisecond apart.
 */
export function newMessageId(createdAt: number, random: (n: number) => Uint8Array): Uint8Array {
  const id = new Uint8Array(16);
  let t = Math.max(0, Math.min(Math.trunc(createdAt), 2 ** 48 - 1));
  for (let i = 5; i >= 0; i--) {
    id[i] = t % 256;
    t = Math.floor(t / 256);
  }
  id.set(random(10).subarray(0, 10), 6);
  return id;
}

const KIND_CODES: Record<MessageKind, number> = { mail: 1, chat: 2, read: 3, queues: 4, onion: 5 };
const KINDS_BY_CODE = new Map(Object.entries(KIND_CODES).map(([k, v]) => [v, k as MessageKind]));

/** A message inside a session. */
export interface SessionMessage {
  kind: MessageKind;
  id: Uint8Array;
  createdAt: number;
  expiresAt: number;
  threadId: Uint8Array | null;
  inReplyTo: Uint8Array | null;
  subject: string;
  body: string;
  attachments: Attachment[];
}

const badMessage = (what: string) => new SessionError('BAD_MESSAGE', `bad message: ${what}`);

export function encodeMessage(m: SessionMessage): Uint8Array {
  checkLength(m.id, 16, 'message id');
  if (m.threadId) checkLength(m.threadId, 16, 'thread id');
  if (m.inReplyTo) checkLength(m.inReplyTo, 16, 'in-reply-to id');
  const kind = KIND_CODES[m.kind];
  if (kind === undefined) throw badMessage(`unknown kind ${String(m.kind)}`);
  const subject = new TextEncoder().encode(m.subject);
  if (subject.length > MAX_SUBJECT_BYTES) throw new SessionError('TOO_LARGE', `subject longer than ${MAX_SUBJECT_BYTES} bytes`);
  if (m.attachments.length > MAX_ATTACHMENTS) throw new SessionError('TOO_LARGE', `more than ${MAX_ATTACHMENTS} attachments`);
  const w = new ByteWriter()
    .u8(MESSAGE_V2).u8(kind).bytes(m.id).u64(m.createdAt).u64(m.expiresAt)
    .bytes(m.threadId ?? ZERO_ID).bytes(m.inReplyTo ?? ZERO_ID)
    .varBytes(subject, 16).string(m.body, 32).u8(m.attachments.length);
  for (const a of m.attachments) w.string(a.name, 8).string(a.mediaType, 8).varBytes(a.data, 32);
  return w.finish();
}

export function decodeMessage(bytes: Uint8Array): SessionMessage {
  const r = new ByteReader(bytes, badMessage);
  const version = r.u8('version');
  if (version !== MESSAGE_V2) throw new SessionError('UNSUPPORTED_VERSION', `message version ${version} is not supported; this node speaks version ${MESSAGE_V2}`);
  const kind = KINDS_BY_CODE.get(r.u8('kind'));
  if (!kind) throw badMessage('unknown kind');
  const id = Uint8Array.from(r.bytes(16, 'id'));
  const createdAt = r.u64('created_at');
  const expiresAt = r.u64('expires_at');
  const thread = Uint8Array.from(r.bytes(16, 'thread'));
  const reply = Uint8Array.from(r.bytes(16, 'in-reply-to'));
  const subject = r.string(16, MAX_SUBJECT_BYTES, 'subject');
  const body = r.string(32, bytes.length, 'body');
  const n = r.u8('attachment count');
  if (n > MAX_ATTACHMENTS) throw badMessage('too many attachments');
  const attachments: Attachment[] = [];
  for (let i = 0; i < n; i++) {
    attachments.push({ name: r.string(8, 255, 'attachment name'), mediaType: r.string(8, 255, 'media type'), data: Uint8Array.from(r.varBytes(32, bytes.length, 'attachment')) });
  }
  r.end('message');
  return {
    kind, id, createdAt, expiresAt, subject, body, attachments,
    threadId: bytesEqual(thread, ZERO_ID) ? null : thread,
    inReplyTo: bytesEqual(reply, ZERO_ID) ? null : reply,
  };
}

/**
 * The padded plaintext length P for an envelope whose bytes before the body are `prefix` long and
 * whose inner message is `n` bytes: the smallest bucket B with prefix + 4 + n + 16 ≤ B gives
 * P = B − prefix − 16.
 */
export function paddedLength(prefix: number, n: number): number {
  const bucket = PADDING_BUCKETS.find((b) => b >= prefix + 4 + n + 16);
  if (bucket === undefined) throw new SessionError('TOO_LARGE', `message of ${n} bytes exceeds the largest size bucket`);
  return bucket - prefix - 16;
}

export function pad(inner: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  new DataView(out.buffer).setUint32(0, inner.length);
  out.set(inner, 4);
  return out;
}

export function unpad(padded: Uint8Array): Uint8Array {
  if (padded.length < 4) throw badMessage('padded plaintext shorter than its length prefix');
  const n = new DataView(padded.buffer, padded.byteOffset, padded.byteLength).getUint32(0);
  if (n > padded.length - 4) throw badMessage('padding length prefix exceeds the plaintext');
  let filler = 0;
  for (let i = 4 + n; i < padded.length; i++) filler |= padded[i]!;
  if (filler !== 0) throw badMessage('non-zero padding bytes');
  return padded.subarray(4, 4 + n);
}

/** The time checks every accepted message passes (PROTOCOL.md §9.1). */
export function checkTimes(m: SessionMessage, opts: { now: number; maxClockSkewMs: number }): void {
  if (m.expiresAt <= m.createdAt) throw new SessionError('CLOCK_SKEW', 'message expires before it was created');
  if (m.createdAt > opts.now + opts.maxClockSkewMs) throw new SessionError('CLOCK_SKEW', 'message created in the future beyond the allowed skew');
  if (m.expiresAt <= opts.now) throw new SessionError('EXPIRED', 'message has expired');
}
