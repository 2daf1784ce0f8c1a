/**
 * The envelope seam: what the message pipeline asks of the end-to-end encryption, so the pipeline's
 * control flow (queue, attempt, deliver, receive, receipt) does not know the scheme's details. The
 * implementation is session-envelopes.ts (PROTOCOL.md: agreement, ratchet, tags, receipt MACs);
 * its state lives in the same store, and every method that changes it runs inside the store
 * transaction the pipeline names, so the scheme's state moves with the message:
 *
 *   queue:     store.batch( b = batch(); for each: prepare(peer, draft, b) → [insert the row] → recorded(); b.finish() )
 *              prepare returns null when no session exists yet: the row is queued unsealed
 *   attempt:   unsealed? ─ hasSession(peer)? sealQueued(peer)
 *                        └ otherwise BUNDLE request → agree(peer, answer)   (one agreement per peer at a time)
 *              sendable(id)? ─ no: wait for the session's INIT receipt (PROTOCOL.md §7.3)
 *              DELIVER → RECEIPT: checkReceipt(id, hash, mac) │ REJECT UNKNOWN_SESSION: unknownSession(id)
 *   receive:   check(bytes) (cheap, outside) → store.batch( open(bytes) → [commit the row] → commit() ) → after()
 *              Several DELIVERs may share one transaction: each open() reads the state the previous
 *              one in the batch wrote, so two messages of one session chain.
 *   serving:   BUNDLE request → bundleAnswer()
 */
import type { Attachment, MessageKind as SessionMessageKind } from '../session/index.js';

export type { Attachment };

/** One message as the user wrote it, with the identity and times the pipeline gave it. */
export interface Draft {
  /** 16 random bytes, chosen once; every retry carries the same id. */
  id: Uint8Array;
  kind: SessionMessageKind;
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

/** The bytes to queue: sent unchanged on every attempt. */
export interface Prepared {
  envelope: Uint8Array;
  /** What the recipient's receipt is bound to (SHA-256 of the envelope). */
  envelopeHash: Uint8Array;
}

/** An inbound message that opened. */
export interface OpenedMessage {
  id: Uint8Array;
  kind: SessionMessageKind;
  /** The sender's Ed25519 identity key (who the session is with) and its onion address. */
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

/** What open() found, inside the transaction that commits the message. */
export type Opened =
  | { reject: EnvelopeReject }
  /** These exact bytes were accepted before: answer the stored receipt, write nothing. */
  | { duplicate: true; receipt: Uint8Array }
  | {
      message: OpenedMessage;
      envelopeHash: Uint8Array;
      /** The receipt to store with the message and send once the transaction committed. */
      receipt: Uint8Array;
      /** The scheme's writes (new state, seen tag, …): call in the same transaction, after the message row. */
      commit(): void;
      /** In-memory bookkeeping once the transaction committed (never if it rolled back). */
      after(): void;
    };

/** prepare() calls sharing one transaction (see Envelopes.batch). */
export interface PrepareBatch {
  /** Writes what the batch's prepare() calls changed. In the same transaction, after the last of them. */
  finish(): void;
}

/** What to do about a REJECT UNKNOWN_SESSION for a message (PROTOCOL.md §7.3, §7.4). */
export type UnknownSessionVerdict =
  /** The message is a SESSION envelope sent before its session's INIT was receipted: retry after it. */
  | { action: 'wait' }
  /** The message lost its envelope (its session was reset now, or before): the next attempt encrypts it again. */
  | { action: 'reseal'; reset: { sessionId: string; messages: number } | null };

/** Whether a queued message may go on the wire now. */
export type Sendability =
  | { send: true }
  /**
   * Not yet: its session's INIT is not receipted (`init` is that message's id, while it is queued),
   * or the message is further ahead of what the peer has receipted than the peer's tag window.
   */
  | { send: false; init: string | null };

export interface Envelopes {
  /** Our answer to a peer's BUNDLE request (hands out one one-time prekey, committed before it returns). */
  bundleAnswer(): Uint8Array;
  /** Throws unless `answer` is a valid bundle answer of `identityKey` (the node's self-check). */
  checkBundleAnswer(answer: Uint8Array, identityKey: Uint8Array): void;
  /** Our bundle as a bundle answer without a one-time prekey: what we push to announce our providers. */
  ownBundleAnswer?(): Uint8Array;
  /**
   * Hands out up to `n` of our one-time prekeys (marked handed out, committed before it returns) to
   * be kept at one of our mailbox providers for first contacts while we are offline (PROTOCOL.md §14.8).
   */
  handOutPrekeys?(n: number): { id: number; public: Uint8Array }[];
  /**
   * A bundle answer a peer pushed (its own, signed): when it verifies and we have a session with
   * its identity, remember the providers it lists (unless we saw a newer bundle). True if taken.
   */
  learnBundle?(answer: Uint8Array): boolean;
  /**
   * Encrypts `draft` for `peer` on the session we send on, inside the transaction that queues it:
   * call `recorded()` right after the message row is inserted. Null when there is no session yet
   * (the message is queued unsealed; its first attempt agrees). Throws SessionError TOO_LARGE.
   */
  prepare(peer: Uint8Array, draft: Draft, batch?: PrepareBatch): (Prepared & { recorded(): void }) | null;
  /**
   * For many prepare() calls in one transaction: each session's state is read once and written
   * once, by the batch's finish(), which must run in that same transaction after the last prepare.
   */
  batch(): PrepareBatch;
  /** Whether a message to `peer` can be encrypted without an agreement. */
  hasSession(peer: Uint8Array): boolean;
  /** Encrypts every unsealed queued message to `peer` on the current session, in one transaction. Returns how many. */
  sealQueued(peer: Uint8Array): number;
  /**
   * A new agreement with `peer` from its bundle answer (verified here against `peer`): one
   * transaction stores the new session and encrypts every unsealed queued message to the peer,
   * oldest first, the first as its INIT. Returns the peer's encryption key and bundle (to pin).
   */
  agree(peer: Uint8Array, answer: Uint8Array): { encryptionKey: Uint8Array; bundle: Uint8Array; sealed: number };
  /** §7.3: a SESSION envelope waits until its session's INIT is receipted, and stays within the peer's tag window (§8.2). */
  sendable(messageId: string): Sendability;
  /** A REJECT UNKNOWN_SESSION for this message arrived (resets its session when that is the answer). */
  unknownSession(messageId: string): UnknownSessionVerdict;
  /**
   * True when `mac` proves the recipient committed message `messageId` with this envelope hash.
   * `confirmed` when it was the receipt of an INIT (the session's other messages may go now).
   */
  checkReceipt(messageId: string, envelopeHash: Uint8Array, mac: Uint8Array): { valid: boolean; confirmed: boolean };
  /** Cheap checks an envelope passes before any store or crypto work (size, kind); the REJECT otherwise. */
  check(envelope: Uint8Array): EnvelopeReject | null;
  /**
   * Finds the envelope's session and opens it, inside the transaction that will commit it (reads
   * the state that transaction sees). Changes nothing itself: see Opened.
   */
  open(envelope: Uint8Array, now: number): Opened;
  /** Starts housekeeping (prekey rotation and refill, expiry of old keys); idempotent. */
  start(): void;
  /** Stops housekeeping; idempotent. */
  close(): void;
}
