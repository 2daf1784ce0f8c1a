import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  FRAME_TYPE_IDS, MAX_REASON_BYTES, NO_MESSAGE_ID, ProtocolError, RejectCode, WIRE_VERSION, decodeFrame, encodeFrame,
  isRetryableByDefault, rejectCodeName, type Frame,
} from '../../src/protocol/index.js';
import { DEFAULT_LIMITS } from '../../src/limits.js';

const LIMITS = { maxFrame: 4096, maxEnvelope: 2048 };

function filled(n: number, start: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (start + i * 7) & 0xff);
}

const SAMPLES: Frame[] = [
  { type: 'HELLO', versions: [1], capabilities: [] },
  { type: 'HELLO', versions: [1, 2, 65535], capabilities: ['mailbox', 'x-y.z/1'], agent: 'onionpost/0.1 ünï' },
  { type: 'HELLO', versions: [3], capabilities: ['a'], agent: '' },
  { type: 'BUNDLE_REQUEST' },
  { type: 'BUNDLE', bundle: filled(300, 1) },
  { type: 'DELIVER', messageId: filled(16, 2), envelope: filled(1024 + 48, 3) },
  { type: 'DELIVER', messageId: filled(16, 2), envelope: filled(LIMITS.maxEnvelope, 9) },
  { type: 'RECEIPT', receipts: [{ messageId: filled(16, 4), mac: filled(16, 5) }] },
  { type: 'RECEIPT', receipts: [{ messageId: filled(16, 4), mac: filled(16, 5) }, { messageId: filled(16, 6), mac: filled(16, 8) }] },
  { type: 'REJECT', messageId: filled(16, 7), code: RejectCode.EXPIRED, retryable: false, reason: 'expired at 2026-01-01' },
  { type: 'REJECT', messageId: NO_MESSAGE_ID, code: RejectCode.RATE_LIMITED, retryable: true, reason: '' },
  { type: 'REJECT', messageId: NO_MESSAGE_ID, code: 0xffff, retryable: true, reason: 'é'.repeat(MAX_REASON_BYTES / 2) },
  { type: 'PING', nonce: 0n },
  { type: 'PONG', nonce: 0xffff_ffff_ffff_ffffn },
];

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
    return err.code;
  }
  return 'no error';
}

test('every frame type round-trips, version byte first and type byte second', () => {
  const seen = new Set<string>();
  for (const f of SAMPLES) {
    const bytes = encodeFrame(f);
    assert.equal(bytes[0], WIRE_VERSION);
    assert.equal(bytes[1], FRAME_TYPE_IDS[f.type]);
    assert.deepEqual(decodeFrame(bytes, LIMITS), f);
    seen.add(f.type);
  }
  assert.deepEqual([...seen].sort(), Object.keys(FRAME_TYPE_IDS).sort());
});

test('fixed layouts have the documented sizes', () => {
  assert.equal(encodeFrame({ type: 'BUNDLE_REQUEST' }).length, 2);
  assert.equal(encodeFrame(SAMPLES[7]!).length, 2 + 2 + 16 + 16);
  assert.equal(encodeFrame(SAMPLES[8]!).length, 2 + 2 + 2 * 32);
  assert.deepEqual([...encodeFrame(SAMPLES[8]!).subarray(0, 4)], [1, 5, 0, 2]);
  assert.equal(encodeFrame({ type: 'PING', nonce: 1n }).length, 10);
  assert.equal(encodeFrame(SAMPLES[5]!).length, 2 + 16 + 4 + 1072);
  assert.deepEqual([...encodeFrame({ type: 'PING', nonce: 0x0102n })], [1, 7, 0, 0, 0, 0, 0, 0, 1, 2]);
  assert.deepEqual([...encodeFrame({ type: 'HELLO', versions: [1], capabilities: ['ab'] })], [1, 1, 1, 0, 1, 1, 2, 97, 98, 0]);
});

test('the largest DELIVER fits in DEFAULT_LIMITS.maxFrame', () => {
  const f: Frame = { type: 'DELIVER', messageId: filled(16, 0), envelope: new Uint8Array(DEFAULT_LIMITS.maxEnvelope) };
  const bytes = encodeFrame(f);
  assert.ok(bytes.length <= DEFAULT_LIMITS.maxFrame);
  assert.equal(decodeFrame(bytes, DEFAULT_LIMITS).type, 'DELIVER');
});

test('every proper prefix of every valid frame is TRUNCATED', () => {
  let checked = 0;
  for (const f of SAMPLES) {
    const bytes = encodeFrame(f);
    for (let n = 0; n < bytes.length; n++) {
      assert.equal(codeOf(() => decodeFrame(bytes.subarray(0, n), LIMITS)), 'TRUNCATED', `${f.type} cut at ${n}`);
      checked++;
    }
  }
  assert.ok(checked > 2000);
});

test('wrong version, unknown type and trailing bytes are refused', () => {
  for (const f of SAMPLES) {
    const bytes = encodeFrame(f);
    for (const v of [0, 2, 0xff]) {
      const bad = Uint8Array.from(bytes);
      bad[0] = v;
      assert.equal(codeOf(() => decodeFrame(bad, LIMITS)), 'BAD_VERSION');
    }
    assert.equal(codeOf(() => decodeFrame(Uint8Array.of(...bytes, 0), LIMITS)), 'TRAILING_BYTES', f.type);
  }
  for (const t of [0, 9, 0x7f, 0xff]) assert.equal(codeOf(() => decodeFrame(Uint8Array.of(1, t), LIMITS)), 'UNKNOWN_TYPE');
  assert.equal(codeOf(() => decodeFrame(Uint8Array.of(2), LIMITS)), 'BAD_VERSION');
});

test('oversized frames and declared lengths are refused before the bytes are looked for', () => {
  assert.equal(codeOf(() => decodeFrame(new Uint8Array(LIMITS.maxFrame + 1), LIMITS)), 'TOO_LARGE');
  // DELIVER declaring maxEnvelope + 1 bytes but carrying none.
  const deliver = Uint8Array.of(1, 4, ...new Uint8Array(16), 0, 0, 0x08, 0x01);
  assert.equal(codeOf(() => decodeFrame(deliver, LIMITS)), 'TOO_LARGE');
  const huge = Uint8Array.of(1, 4, ...new Uint8Array(16), 0xff, 0xff, 0xff, 0xff);
  assert.equal(codeOf(() => decodeFrame(huge, LIMITS)), 'TOO_LARGE');
  assert.equal(codeOf(() => decodeFrame(Uint8Array.of(1, 3, 0xff, 0xff, 0xff, 0xff), LIMITS)), 'TOO_LARGE');
  // Zero-length envelope and bundle.
  assert.equal(codeOf(() => decodeFrame(Uint8Array.of(1, 4, ...new Uint8Array(16), 0, 0, 0, 0), LIMITS)), 'BAD_LENGTH');
  assert.equal(codeOf(() => decodeFrame(Uint8Array.of(1, 3, 0, 0, 0, 0), LIMITS)), 'BAD_LENGTH');
  // HELLO counts and string lengths over their maxima.
  assert.equal(codeOf(() => decodeFrame(Uint8Array.of(1, 1, 0), LIMITS)), 'BAD_LENGTH');
  assert.equal(codeOf(() => decodeFrame(Uint8Array.of(1, 1, 17), LIMITS)), 'BAD_LENGTH');
  assert.equal(codeOf(() => decodeFrame(Uint8Array.of(1, 1, 1, 0, 1, 33), LIMITS)), 'BAD_LENGTH');
  assert.equal(codeOf(() => decodeFrame(Uint8Array.of(1, 1, 1, 0, 1, 1, 33), LIMITS)), 'BAD_LENGTH');
  assert.equal(codeOf(() => decodeFrame(Uint8Array.of(1, 1, 1, 0, 1, 0, 1, 65), LIMITS)), 'BAD_LENGTH');
  // REJECT reason over 200 bytes.
  assert.equal(codeOf(() => decodeFrame(Uint8Array.of(1, 6, ...new Uint8Array(16), 0, 1, 0, 201), LIMITS)), 'BAD_LENGTH');
});

test('field domains are checked on decode and on encode', () => {
  assert.equal(codeOf(() => decodeFrame(Uint8Array.of(1, 1, 1, 0, 0, 0, 0), LIMITS)), 'BAD_FIELD'); // version 0
  assert.equal(codeOf(() => decodeFrame(Uint8Array.of(1, 1, 1, 0, 1, 1, 1, 0x20, 0), LIMITS)), 'BAD_FIELD'); // space
  assert.equal(codeOf(() => decodeFrame(Uint8Array.of(1, 1, 1, 0, 1, 0, 2), LIMITS)), 'BAD_FIELD'); // agent flag
  assert.equal(codeOf(() => decodeFrame(Uint8Array.of(1, 1, 1, 0, 1, 0, 1, 1, 0xff), LIMITS)), 'BAD_FIELD'); // agent UTF-8
  assert.equal(codeOf(() => decodeFrame(Uint8Array.of(1, 6, ...new Uint8Array(16), 0, 1, 2, 0), LIMITS)), 'BAD_FIELD');
  assert.equal(codeOf(() => encodeFrame({ type: 'DELIVER', messageId: new Uint8Array(15), envelope: Uint8Array.of(1) })), 'BAD_FIELD');
  assert.equal(codeOf(() => encodeFrame({ type: 'RECEIPT', receipts: [{ messageId: new Uint8Array(16), mac: new Uint8Array(15) }] })), 'BAD_FIELD');
  assert.equal(codeOf(() => encodeFrame({ type: 'RECEIPT', receipts: [] })), 'BAD_LENGTH');
  // count 0, and a count over maxReceiptsPerFrame, are refused before the pairs are read
  assert.equal(codeOf(() => decodeFrame(Uint8Array.of(1, 5, 0, 0), LIMITS)), 'BAD_LENGTH');
  assert.equal(codeOf(() => decodeFrame(Uint8Array.of(1, 5, 1, 1, ...new Uint8Array(257 * 32)), { ...LIMITS, maxFrame: 1 << 20 })), 'BAD_LENGTH');
  assert.equal(codeOf(() => decodeFrame(Uint8Array.of(1, 5, 0, 3, ...new Uint8Array(3 * 32)), { ...LIMITS, maxReceiptsPerFrame: 2 })), 'BAD_LENGTH');
  assert.equal(codeOf(() => encodeFrame({ type: 'REJECT', messageId: NO_MESSAGE_ID, code: 1, retryable: false, reason: 'x'.repeat(201) })), 'BAD_LENGTH');
  assert.equal(codeOf(() => encodeFrame({ type: 'REJECT', messageId: NO_MESSAGE_ID, code: 0x10000, retryable: false, reason: '' })), 'BAD_FIELD');
  assert.equal(codeOf(() => encodeFrame({ type: 'HELLO', versions: [], capabilities: [] })), 'BAD_LENGTH');
  assert.equal(codeOf(() => encodeFrame({ type: 'HELLO', versions: [1], capabilities: ['has space'] })), 'BAD_FIELD');
  assert.equal(codeOf(() => encodeFrame({ type: 'PING', nonce: -1n })), 'BAD_FIELD');
  assert.equal(codeOf(() => encodeFrame({ type: 'PING', nonce: 1n << 64n })), 'BAD_FIELD');
});

test('decoded byte fields are copies, not views of the input', () => {
  const bytes = encodeFrame(SAMPLES[5]!);
  const f = decodeFrame(bytes, LIMITS);
  bytes.fill(0);
  assert.deepEqual(f, SAMPLES[5]);
});

test('reject codes: stable numbers, names, default retryability', () => {
  assert.deepEqual(
    [RejectCode.MALFORMED, RejectCode.TOO_LARGE, RejectCode.UNSUPPORTED_VERSION, RejectCode.WRONG_RECIPIENT, RejectCode.BAD_SIGNATURE,
      RejectCode.EXPIRED, RejectCode.CLOCK_SKEW, RejectCode.DECRYPT_FAILED, RejectCode.UNKNOWN_SESSION, RejectCode.RATE_LIMITED, RejectCode.BUSY,
      RejectCode.STORAGE_FULL, RejectCode.INTERNAL],
    [1, 2, 3, 10, 11, 12, 13, 14, 16, 20, 21, 22, 23],
  );
  assert.equal(new Set(Object.values(RejectCode)).size, Object.keys(RejectCode).length);
  assert.equal(rejectCodeName(RejectCode.BUSY), 'BUSY');
  assert.equal(rejectCodeName(999), 'UNKNOWN_999');
  assert.ok(isRetryableByDefault(RejectCode.STORAGE_FULL));
  assert.ok(!isRetryableByDefault(RejectCode.BAD_SIGNATURE));
  assert.ok(!isRetryableByDefault(RejectCode.UNKNOWN_SESSION));
});

// --- properties -----------------------------------------------------------------------------------

const bytesOf = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const capability = fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 32 });
const utf8Upto = (max: number) => fc.string({ unit: 'grapheme', maxLength: max }).filter((s) => new TextEncoder().encode(s).length <= max);
const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.record(
    {
      type: fc.constant('HELLO' as const),
      versions: fc.array(fc.integer({ min: 1, max: 0xffff }), { minLength: 1, maxLength: 16 }),
      capabilities: fc.array(capability, { maxLength: 32 }),
      agent: utf8Upto(64),
    },
    { requiredKeys: ['type', 'versions', 'capabilities'] },
  ),
  fc.constant({ type: 'BUNDLE_REQUEST' as const }),
  fc.record({ type: fc.constant('BUNDLE' as const), bundle: fc.uint8Array({ minLength: 1, maxLength: LIMITS.maxEnvelope }) }),
  fc.record({ type: fc.constant('DELIVER' as const), messageId: bytesOf(16), envelope: fc.uint8Array({ minLength: 1, maxLength: LIMITS.maxEnvelope }) }),
  fc.record({ type: fc.constant('RECEIPT' as const), receipts: fc.array(fc.record({ messageId: bytesOf(16), mac: bytesOf(16) }).map((r) => ({ messageId: r.messageId, mac: r.mac })), { minLength: 1, maxLength: 8 }) }),
  fc.record({
    type: fc.constant('REJECT' as const), messageId: bytesOf(16), code: fc.integer({ min: 0, max: 0xffff }), retryable: fc.boolean(),
    reason: utf8Upto(200),
  }),
  fc.record({ type: fc.constant('PING' as const), nonce: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }),
  fc.record({ type: fc.constant('PONG' as const), nonce: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }),
);

test('property: decode(encode(frame)) is the frame', () => {
  fc.assert(fc.property(frameArb, (f) => {
    // fast-check builds null-prototype records; compare as plain objects.
    assert.deepEqual(decodeFrame(encodeFrame(f), LIMITS), { ...f });
  }), { numRuns: 2000 });
});

test('property: decodeFrame of random bytes returns a frame or throws ProtocolError, nothing else', () => {
  const mutated = fc.tuple(frameArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 })).map(([f, edits]) => {
    const b = Uint8Array.from(encodeFrame(f));
    for (const [at, v] of edits) if (b.length > 0) b[at % b.length] = v;
    return b;
  });
  const random = fc.uint8Array({ maxLength: 300 }).map((b) => (b.length > 0 ? Uint8Array.of(1, ...b) : b));
  fc.assert(fc.property(fc.oneof(mutated, random, fc.uint8Array({ maxLength: 64 })), (bytes) => {
    let frame: Frame;
    try {
      frame = decodeFrame(bytes, LIMITS);
    } catch (err) {
      assert.ok(err instanceof ProtocolError, `threw ${String(err)}`);
      return;
    }
    // Whatever decodes re-encodes to the same bytes: the format has one encoding per frame.
    assert.deepEqual(encodeFrame(frame), bytes);
  }), { numRuns: 5000 });
});
