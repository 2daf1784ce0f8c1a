/**
 * What the simulated users put inside the envelopes they deposit. To the providers these are opaque
 * byte strings of a valid envelope size (a padding bucket, PROTOCOL.md §9); in a real node they
 * would be SESSION envelopes. The content is not under test, only that each carries a unique id
 * (the recipient dedups by it) and, for control envelopes, what a session would carry back: the
 * recipient's end-to-end receipts (which provider each copy came through) and loss reports.
 *
 *   mail     kind u8 = 1 | id 16 | from u16 | to u16 | created u64 | expires u64 | zeros to the bucket
 *   control  kind u8 = 2 | id 16 | from u16 | to u16 | created u64 | expires u64
 *            | n u16 | n × (message id 16 | via provider u8 | late u8)
 *            | m u16 | m × (message id 16 | provider u8 | deposit receipt: queue 16 | seq u64 | digest 32
 *                           | deposited at u64 | expires at u64 | sig 64)
 *            | zeros to the bucket
 */
import { ByteReader, ByteWriter } from '../../src/bytes.js';
import { PADDING_BUCKETS } from '../../src/limits.js';
import type { DepositReceipt } from '../../src/provider/index.js';

/** The recipient got a copy of `id` through provider `via`; `late` = after the message expired. */
export interface ReceiptEntry {
  id: Uint8Array;
  via: number;
  late: boolean;
}

/** "Your provider `provider` signed for message `id` (here is its receipt) and you never got that copy." */
export interface LossReport {
  id: Uint8Array;
  provider: number;
  receipt: DepositReceipt;
}

export type Payload =
  | { kind: 'mail'; id: Uint8Array; from: number; to: number; createdAt: number; expiresAt: number }
  | { kind: 'control'; id: Uint8Array; from: number; to: number; createdAt: number; expiresAt: number; receipts: ReceiptEntry[]; reports: LossReport[] };

const HEADER = 1 + 16 + 2 + 2 + 8 + 8;
export const RECEIPT_ENTRY_BYTES = 18;
export const LOSS_REPORT_BYTES = 17 + 16 + 8 + 32 + 8 + 8 + 64;
/** Largest bucket a control envelope uses; more items go in another envelope. */
export const CONTROL_MAX_BYTES = 16_384;

export function controlBytes(receipts: number, reports: number): number {
  return HEADER + 2 + receipts * RECEIPT_ENTRY_BYTES + 2 + reports * LOSS_REPORT_BYTES;
}

function bucketFor(n: number): number {
  const b = PADDING_BUCKETS.find((s) => s >= n);
  if (b === undefined) throw new RangeError(`${n} bytes fit no bucket`);
  return b;
}

export function isSimEnvelopeSize(n: number): boolean {
  return (PADDING_BUCKETS as readonly number[]).includes(n);
}

/** Encodes `p` padded with zeros to `size` (a bucket), or to the smallest bucket that fits. */
export function encodePayload(p: Payload, size?: number): Uint8Array {
  const w = new ByteWriter().u8(p.kind === 'mail' ? 1 : 2).bytes(p.id).u16(p.from).u16(p.to).u64(p.createdAt).u64(p.expiresAt);
  if (p.kind === 'control') {
    w.u16(p.receipts.length);
    for (const r of p.receipts) w.bytes(r.id).u8(r.via).u8(r.late ? 1 : 0);
    w.u16(p.reports.length);
    for (const l of p.reports) {
      const r = l.receipt;
      w.bytes(l.id).u8(l.provider).bytes(r.queue).u64(r.seq).bytes(r.digest).u64(r.depositedAt).u64(r.expiresAt).bytes(r.sig);
    }
  }
  const body = w.finish();
  const out = new Uint8Array(size ?? bucketFor(body.length));
  if (body.length > out.length || !isSimEnvelopeSize(out.length)) throw new RangeError(`a payload of ${body.length} bytes in ${out.length}`);
  out.set(body);
  return out;
}

export function decodePayload(b: Uint8Array): Payload {
  const r = new ByteReader(b, (what) => new Error(`simulated envelope: ${what}`));
  const kind = r.u8('kind');
  const id = Uint8Array.from(r.bytes(16, 'id'));
  const from = r.u16('from');
  const to = r.u16('to');
  const createdAt = r.u64('created');
  const expiresAt = r.u64('expires');
  if (kind === 1) return { kind: 'mail', id, from, to, createdAt, expiresAt };
  if (kind !== 2) throw new Error(`simulated envelope: kind ${kind}`);
  const receipts: ReceiptEntry[] = [];
  for (let i = 0, n = r.u16('receipts'); i < n; i++) receipts.push({ id: Uint8Array.from(r.bytes(16)), via: r.u8(), late: r.u8() === 1 });
  const reports: LossReport[] = [];
  for (let i = 0, n = r.u16('reports'); i < n; i++) {
    const mid = Uint8Array.from(r.bytes(16));
    const provider = r.u8();
    const queue = Uint8Array.from(r.bytes(16));
    const seq = r.u64();
    const digest = Uint8Array.from(r.bytes(32));
    const depositedAt = r.u64();
    const exp = r.u64();
    const sig = Uint8Array.from(r.bytes(64));
    reports.push({ id: mid, provider, receipt: { queue, seq, digest, depositedAt, expiresAt: exp, sig } });
  }
  return { kind: 'control', id, from, to, createdAt, expiresAt, receipts, reports };
}
