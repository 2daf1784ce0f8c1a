/**
 * session/: forward-secret, deniable sessions between two identities (PROTOCOL.md §2–§12). Pure
 * functions over bytes, no I/O, randomness injectable everywhere:
 *
 *   prekeys + bundle v2 ── initiate ──► INIT envelope ──► respond ──► state (both sides)
 *   state ── encrypt ──► SESSION envelope ── TagIndex.lookup(tag) ─► (session, k) ── decrypt ──► message
 *   receipt key (from encrypt/decrypt) ── receiptMac ──► 16-byte receipt
 *
 * Every state-changing function returns a new SessionState and leaves its input untouched, so the
 * caller stores the new state in the same transaction that queues or commits the message, and a
 * failure changes nothing. Call `await cryptoReady()` (crypto/) first: bundles sign with it.
 */
export { SessionError, type SessionErrorCode } from './errors.js';
export {
  BUNDLE_V2, DEFAULT_BUNDLE_LIFETIME_MS, MAX_BUNDLE_BYTES, MAX_MAILBOXES, MIN_BUNDLE_BYTES,
  decodeBundle, decodeBundleAnswer, encodeBundleAnswer, newOneTimePrekeys, newPqPrekey, newSignedPrekey, signBundle, verifyBundle,
  type BundleAnswer, type BundleV2, type OneTimePrekey, type OneTimePrekeyPublic, type PqPrekey, type SignedPrekey,
} from './bundle.js';
export {
  MESSAGE_CAPACITY, MESSAGE_V2, MAX_ATTACHMENTS, MAX_SUBJECT_BYTES, decodeMessage, encodeMessage, messageContentSize, newMessageId,
  type Attachment, type MessageKind, type SessionMessage,
} from './message.js';
export { MAX_SKIP, TAG_BYTES, peerIdentity, tagFor, type Role, type SessionState, type SkippedKey } from './ratchet.js';
export {
  ENVELOPE_VERSION, KIND_INIT, KIND_SESSION, decrypt, encrypt, envelopeKind, isEnvelopeLength, seenKey, sessionTag,
  type Decrypted, type Encrypted, type EnvelopeKind, type ReceiveOptions,
} from './envelope.js';
export {
  MIN_INIT_BYTES, initPrekeyIds, initiate, respond,
  type InitPrekeyIds, type Initiated, type InitiateInput, type PrekeyLookup, type RespondInput, type Responded,
} from './init.js';
export { RECEIPT_MAC_BYTES, receiptMac, verifyReceiptMac } from './receipt.js';
export {
  KIND_RECEIPTS, MAX_RECEIPTS_PER_ENVELOPE, RECEIPTS_ENVELOPE_BYTES, openReceipts, sealReceipts, type PushedReceipt,
} from './receipts-envelope.js';
export { MAX_HANDED_QUEUES, MAX_READ_IDS, directOnionBody, parseDirectOnion, parseQueueHandout, parseReadReceipt, queueHandoutBody, readReceiptBody, type HandedQueue } from './control.js';
export { STATE_BYTES, decodeState, encodeState } from './state.js';
export { DEFAULT_TAG_WINDOW, TagIndex, type TagHit } from './tags.js';
