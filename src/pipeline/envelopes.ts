/**
 * The envelope seam: everything the message pipeline asks of the end-to-end encryption, behind one
 * small interface, so the scheme can change without touching the pipeline's control flow.
 *
 *   sending:    keys known ─ prepare(keys, draft) ─ queued bytes ─ (retries resend them) ─ checkReceipt
 *               keys unknown (onion only) ─ queued unsealed ─ first attempt: BUNDLE ─ acceptBundle ─ prepare
 *   receiving:  open(bytes) ─ commit (with opened.receipt) ─ RECEIPT
 *   serving:    BUNDLE request ─ bundle()
 *
 * Round 1 (this file's `sealedBoxEnvelopes`): a signed inner message padded to a bucket and sealed
 * to the recipient's X25519 key; the receipt is the recipient's signature. A ratchet implementation
 * (src/session/) provides the same interface: `prepare` agrees or ratchets and encrypts, `open`
 * finds the session by tag, `bundle()` hands out prekeys, `checkReceipt` checks a MAC.
 */
import { bytesEqual } from '../bytes.js';
import {
  CryptoError, decodeBundle, encodeBundle, isEnvelopeSize, openMessage, sealMessage, sha256, signBundle, signReceipt,
  verifyBundle, verifyReceipt, type Identity, type RandomBytes,
} from '../crypto/index.js';
import { RejectCode } from '../protocol/index.js';

/** A recipient's public keys as pinned (or just fetched from its signed bundle). */
export interface RecipientKeys {
  /** Ed25519 identity key (32 bytes): who the message is for. */
  identityKey: Uint8Array;
  /** X25519 encryption key (32 bytes) from the recipient's signed bundle or registry record. */
  encryptionKey: Uint8Array;
  /** The encoded signed bundle the keys came from, when they came from one (kept as the pin). */
  bundle?: Uint8Array;
}

/** One message as the user wrote it, with the identity and times the pipeline gave it. */
export interface Draft {
  /** 16 random bytes, chosen once; every retry carries the same id. */
  id: Uint8Array;
  kind: 'mail' | 'chat';
  subject: string;
  body: string;
  /** The thread's first message id, when continuing one. */
  threadId?: Uint8Array;
  inReplyTo?: Uint8Array;
  /** Files carried (at most 16; subject, body and files together at most MESSAGE_CAPACITY bytes). */
  attachments?: readonly Attachment[];
  /** ms since the epoch. */
  createdAt: number;
  expiresAt: number;
}

/** A file a message carries. */
export interface Attachment {
  name: string;
  mediaType: string;
  data: Uint8Array;
}

/** The bytes to queue: sent unchanged on every attempt. */
export interface Prepared {
  envelope: Uint8Array;
  /** What the recipient's receipt is bound to. */
  envelopeHash: Uint8Array;
}

/** An inbound message that opened and verified. */
export interface OpenedMessage {
  id: Uint8Array;
  kind: 'mail' | 'chat' | 'read';
  /** The sender's Ed25519 identity key and its onion address. */
  sender: Uint8Array;
  senderOnion: string;
  subject: string;
  body: string;
  threadId: Uint8Array | null;
  inReplyTo: Uint8Array | null;
  attachments: Attachment[];
  createdAt: number;
  expiresAt: number;
}

/** A REJECT to answer with (numbers from RejectCode). */
export interface EnvelopeReject {
  code: number;
  retryable: boolean;
  reason: string;
}

export type OpenResult =
  | {
    message: OpenedMessage;
    envelopeHash: Uint8Array;
    /** Stored with the message; sent (again) after the commit. */
    receipt: Uint8Array;
    /**
     * Writes the scheme's own state for this message (e.g. a ratchet step), run synchronously
     * inside the store transaction that commits the message, and only when the message is new
     * (not for a duplicate or a conflict). A throw rolls the commit back.
     */
    persist?: () => void;
  }
  | { reject: EnvelopeReject };

export interface Envelopes {
  /** Our key bundle, the answer to a peer's BUNDLE request. */
  bundle(): Uint8Array;
  /**
   * Checks a bundle a peer sent (signature, validity, that it belongs to `identityKey`) and returns
   * the keys to encrypt to. Throws CryptoError when it does not verify.
   */
  acceptBundle(bytes: Uint8Array, expect: { identityKey: Uint8Array; now: number }): RecipientKeys;
  /**
   * Encrypts `draft` for `to`. Called once per message, synchronously inside the store transaction
   * that queues it (so scheme state that lives in the same store advances atomically with it).
   * Throws CryptoError to refuse the draft (e.g. TOO_LARGE); the message is then not queued.
   */
  prepare(to: RecipientKeys, draft: Draft): Prepared;
  /**
   * Opens inbound bytes, cheapest checks first, or says what to REJECT them with. Writes nothing
   * itself: state that must advance with the message goes in the result's `persist`.
   */
  open(envelope: Uint8Array, ctx: { now: number }): OpenResult;
  /** True when `receipt` proves the recipient stored the message `messageId` with this envelope hash. */
  checkReceipt(recipient: Uint8Array, messageId: Uint8Array, envelopeHash: Uint8Array, receipt: Uint8Array): boolean;
}

export interface SealedBoxOptions {
  identity: Identity;
  random: RandomBytes;
  /** How far a sender's clock may be ahead of ours, ms. */
  maxClockSkewMs: number;
  /** Largest envelope we accept, bytes (an oversized one is TOO_LARGE, a bad size MALFORMED). */
  maxEnvelope: number;
  /** Time our bundle is signed at (once, when created). */
  now: number;
}

/** Maps a failure to open an envelope to what the sender is told. */
function rejectFor(err: CryptoError): EnvelopeReject {
  const map: Partial<Record<string, number>> = {
    DECRYPT_FAILED: RejectCode.DECRYPT_FAILED, WRONG_RECIPIENT: RejectCode.WRONG_RECIPIENT, BAD_SIGNATURE: RejectCode.BAD_SIGNATURE,
    CLOCK_SKEW: RejectCode.CLOCK_SKEW, EXPIRED: RejectCode.EXPIRED, ENVELOPE_SIZE: RejectCode.TOO_LARGE,
    UNSUPPORTED_VERSION: RejectCode.UNSUPPORTED_VERSION,
  };
  const code = map[err.code] ?? RejectCode.MALFORMED;
  return { code, retryable: code === RejectCode.CLOCK_SKEW, reason: err.message };
}

/** Round 1: sealed boxes and signed receipts (src/crypto/envelope.ts). */
export function sealedBoxEnvelopes(o: SealedBoxOptions): Envelopes {
  const ownBundle = encodeBundle(signBundle(o.identity, { now: o.now }));
  return {
    bundle: () => ownBundle,
    acceptBundle(bytes, expect) {
      const b = decodeBundle(bytes);
      verifyBundle(b, { now: expect.now, expectedIdentity: expect.identityKey });
      return { identityKey: b.identityKey, encryptionKey: b.encryptionKey, bundle: encodeBundle(b) };
    },
    prepare(to, d) {
      const sealed = sealMessage(o.identity, to.encryptionKey, {
        kind: d.kind, recipient: to.identityKey as never, subject: d.subject, body: d.body,
        ...(d.threadId ? { threadId: d.threadId } : {}), ...(d.inReplyTo ? { inReplyTo: d.inReplyTo } : {}),
        ...(d.attachments?.length ? { attachments: [...d.attachments] } : {}),
      }, { now: d.createdAt, id: d.id, expiresAt: d.expiresAt, random: o.random });
      return { envelope: sealed.envelope, envelopeHash: sealed.envelopeHash };
    },
    open(envelope, ctx) {
      if (!isEnvelopeSize(envelope.length)) {
        return { reject: { code: envelope.length > o.maxEnvelope ? RejectCode.TOO_LARGE : RejectCode.MALFORMED, retryable: false, reason: 'envelope size is not a padding bucket' } };
      }
      try {
        const m = openMessage(o.identity, envelope, { now: ctx.now, maxSkewMs: o.maxClockSkewMs });
        const envelopeHash = sha256(envelope);
        return {
          message: m,
          envelopeHash,
          receipt: signReceipt(o.identity, m.id, envelopeHash),
        };
      } catch (err) {
        if (err instanceof CryptoError) return { reject: rejectFor(err) };
        throw err;
      }
    },
    checkReceipt(recipient, messageId, envelopeHash, receipt) {
      if (envelopeHash.length === 0) return false;
      try {
        verifyReceipt(recipient, messageId, envelopeHash, receipt);
        return true;
      } catch {
        return false;
      }
    },
  };
}

/** True when two hashes are equal and non-empty (a receipt must name the envelope we sent). */
export function sameEnvelope(a: Uint8Array | null, b: Uint8Array): boolean {
  return !!a && a.length > 0 && bytesEqual(a, b);
}
