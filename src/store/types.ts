/**
 * The store's public types: what the node, the protocol handler and the outbox read and write.
 * All times are milliseconds since the Unix epoch; ids and keys are lower-case hex strings.
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { MailFolders } from './mail-folders.js';
import type { SessionStore } from './sessions.js';
import type { MailboxProviders } from './mailbox-providers.js';
import type { Deposits } from './deposits.js';
import type { ContactQueueStore } from './contact-queues.js';
import type { ProviderReputations } from './provider-reputation.js';

export type Direction = 'in' | 'out';
export type MessageKind = 'mail' | 'chat';
/**
 * A control message (PROTOCOL.md §9.2): sent like a message, shown nowhere. Only outgoing ones are
 * rows; listings, counts, search and the mail folders pass over them.
 */
export type ControlKind = 'read' | 'queues' | 'onion';

/**
 * Outgoing message states.
 *
 * ```
 *              ┌──────── retry (scheduleRetry) ───────┐
 *              v                                      │
 *  insert ─> queued ──(outbox picks it)──> sending ───┼──> delivered   (valid receipt)
 *     │        │  ^                           │       ├──> failed      (permanent, with reason)
 *     │        │  └─ resetInFlight / abort ───┘       └──> held        (peer needs the user)
 *     └─> held │                                                │
 *         │    └──(expires_at passed)──> expired <──────────────┤
 *         └──────────── releaseHeld ──> queued <────────────────┘
 * ```
 */
export type OutState = 'queued' | 'sending' | 'delivered' | 'expired' | 'failed' | 'held';
/** Incoming messages have a single state: committed. */
export type InState = 'received';
export type MessageState = OutState | InState;

/** A message as stored, either direction. Fields that do not apply to a direction are null. */
export interface StoredMessage {
  /** 32 hex chars (16 random bytes chosen by the sender). */
  id: string;
  direction: Direction;
  /** A control kind only for an outgoing control message (never listed). */
  kind: MessageKind | ControlKind;
  /** The other party's Ed25519 identity key, 64 hex chars: recipient (out) or sender (in). */
  peerIdentity: string;
  peerOnion: string | null;
  /** Alias or name as the user typed it (display only, never trusted). */
  peerLabel: string | null;
  subject: string | null;
  body: string;
  /** Root message id of the conversation; a message starting one uses its own id. */
  threadId: string;
  inReplyTo: string | null;
  createdAt: number;
  expiresAt: number;
  receivedAt: number | null;
  deliveredAt: number | null;
  state: MessageState;
  /** Why it is failed / held / being retried, for people. */
  stateReason: string | null;
  /** Out: the sealed envelope sent on every attempt. */
  envelope: Uint8Array | null;
  /** SHA-256 of the envelope (what receipts sign). */
  envelopeHash: Uint8Array | null;
  /** Out: the recipient's receipt signature. In: the receipt we signed and sent. */
  receipt: Uint8Array | null;
  read: boolean;
  /** Delivery attempts started so far (out). */
  attempts: number;
  /** Out, queued: the earliest time of the next attempt. */
  nextAttemptAt: number | null;
  /** Out: the code of the last failed attempt, e.g. 'TIMEOUT', 'UNREACHABLE'. */
  lastErrorCode: string | null;
  /** Moved out of the inbox by the user (still searchable, listed with `archived: true`). */
  archived: boolean;
  /** How many files the message carries (read them with `getAttachments`). */
  attachmentCount: number;
  /**
   * Outgoing: the providers holding this message's current envelope for its offline recipient
   * (deposited, issue 11); [] when none. While the message is undelivered it is "in mailbox".
   */
  mailboxes: string[];
  /** Outgoing: when the recipient's read receipt for it arrived (they allow sending them), else null. */
  peerReadAt: number | null;
}

/** A file carried by a message or a draft (the envelope allows at most 16 per message). */
export interface StoredAttachment {
  /** File name as the sender gave it (display only; never used as a path). */
  name: string;
  /** Media type as the sender gave it, e.g. 'image/png' (never trusted for rendering). */
  mediaType: string;
  data: Uint8Array;
}

/** An unsent message being written; survives restarts. */
export interface Draft {
  /** 32 hex chars. */
  id: string;
  kind: MessageKind;
  /** What the user typed in To: an alias, a registry name or an onion; may be empty. */
  to: string;
  subject: string;
  body: string;
  threadId: string | null;
  inReplyTo: string | null;
  attachments: StoredAttachment[];
  createdAt: number;
  updatedAt: number;
}

export type DraftInput = Pick<Draft, 'id' | 'kind' | 'to' | 'subject' | 'body'> & Partial<Pick<Draft, 'threadId' | 'inReplyTo' | 'attachments'>>;

/** A sender's registry name, verified by a forward lookup that returned their identity key. */
export interface PeerName {
  identityKey: string;
  name: string;
  owner: string | null;
  verifiedAt: number;
}

/** A contact's key change the user rejected (kept the pinned key instead). */
export interface RejectedKey {
  /** The pinned identity key the user kept. */
  contactIdentity: string;
  /** The identity key they rejected. */
  identityKey: string;
  registryVersion: number | null;
  rejectedAt: number;
}

export interface SearchOptions {
  direction?: Direction;
  /** Default 50, at most 1000. */
  limit?: number;
}

/** The fields a new message has in either direction. */
interface NewMessage {
  id: string;
  kind: MessageKind | ControlKind;
  /** The peer's Ed25519 identity key (64 hex chars): recipient (out) or sender (in). */
  peerIdentity: string;
  peerOnion?: string | null;
  peerLabel?: string | null;
  subject?: string | null;
  body: string;
  /** Defaults to `id` (a new conversation). */
  threadId?: string | null;
  inReplyTo?: string | null;
  createdAt: number;
  expiresAt: number;
  /** SHA-256 of the envelope (what receipts sign); empty while an outgoing message is unsealed. */
  envelopeHash: Uint8Array;
  /** Files the message carries, in order (at most 16). */
  attachments?: readonly StoredAttachment[];
}

/**
 * What `insertOutgoing` needs: a message sealed to its recipient, or, when the recipient's key is
 * not known yet, with an empty envelope and hash to be sealed later (`setEnvelope`).
 */
export interface NewOutgoing extends NewMessage {
  envelope: Uint8Array;
  /** 'held' queues it behind an unapproved key change of the peer. Default 'queued'. */
  state?: 'queued' | 'held';
  stateReason?: string | null;
  /** Default `createdAt` (send at once). */
  nextAttemptAt?: number;
  /**
   * The caller's idempotency key (1–128 characters) and a hash of what it asked for. Unique: a
   * second message with the same key is refused with CONSTRAINT (look the first up with `sentWithKey`).
   */
  idempotency?: { key: string; requestHash: Uint8Array };
}

/** The message an idempotency key was first used for. */
export interface KeyedSend {
  messageId: string;
  /** The request hash stored with the key. */
  requestHash: Uint8Array;
}

/** What `commitIncoming` needs: an opened, verified message and the receipt we will send for it. */
export interface NewIncoming extends NewMessage {
  /** Incoming control messages are applied, never stored as rows. */
  kind: MessageKind;
  receivedAt: number;
  /** Our signed receipt; stored and returned unchanged for every duplicate. */
  receipt: Uint8Array;
}

export interface CommitResult {
  /** True when the id was already stored: nothing was written and `receipt` is the stored one. */
  duplicate: boolean;
  /** The receipt to send back (the stored one for a duplicate). */
  receipt: Uint8Array;
  /**
   * True for a duplicate whose sender or envelope hash differ from what was first stored (a replay
   * under another's id, or a re-sealed message). The stored receipt does not sign this envelope;
   * the caller decides whether to send it or reject.
   */
  conflict: boolean;
}

export interface ListOptions {
  direction?: Direction;
  kind?: MessageKind;
  thread?: string;
  /** Only messages whose id starts with these hex characters (what the CLI's `read <id>` takes). */
  idPrefix?: string;
  /** Only messages to or from this peer identity (64 hex chars). */
  peer?: string;
  state?: MessageState;
  /** Only messages in one of these states. */
  states?: readonly MessageState[];
  /** true: only archived messages; false: only those not archived; omitted: both. */
  archived?: boolean;
  /** Default 50, at most 1000. */
  limit?: number;
  /**
   * Page cursor: only messages listed after this one. Either the last row's `{at: sortAt, id}` (exact)
   * or a time (messages strictly older than it).
   */
  before?: number | { at: number; id: string };
}

/** One conversation, for a list view. */
export interface ThreadSummary {
  threadId: string;
  /** Subject of the oldest message in the thread. */
  subject: string | null;
  /** Peer, label and kind of the newest message. */
  peerIdentity: string;
  peerLabel: string | null;
  kind: MessageKind;
  lastAt: number;
  messages: number;
  unread: number;
}

export interface MessageEvent {
  at: number;
  state: MessageState;
  detail: string | null;
}

/**
 * The outbox's record of one peer: its backoff, kept once per peer instead of in each queued
 * message. A queued message is due when its own next_attempt_at and its peer's have both passed.
 */
export interface PeerState {
  peerIdentity: string;
  /** Failed steps since the last success: the backoff step. 0 while the peer is healthy. */
  failures: number;
  /** No delivery to this peer before this time (0: no pause). */
  nextAttemptAt: number;
  /** The code of the last failed step, e.g. 'PEER_UNKNOWN', 'TIMEOUT'. */
  lastErrorCode: string | null;
  lastFailureAt: number | null;
  /** When the last receipt from this peer was recorded. */
  lastSuccessAt: number | null;
  updatedAt: number;
}

/** What `setPeerState` writes; a field left out keeps its stored value (or its default for a new row). */
export type PeerStateUpdate = Pick<PeerState, 'failures' | 'nextAttemptAt'> &
  Partial<Pick<PeerState, 'lastErrorCode' | 'lastFailureAt' | 'lastSuccessAt'>>;

/** A peer with queued messages, as the outbox's scheduler sees it. */
export interface QueuedPeer {
  peerIdentity: string;
  /** When its first queued message may be tried: the later of that message's own next attempt and the peer's. */
  dueAt: number;
  /** The peer's failed steps (PeerState.failures; 0 without a row). */
  failures: number;
}

export type AttemptOutcome = 'delivered' | 'retry' | 'failed' | 'held' | 'aborted' | 'expired';

export interface Attempt {
  id: number;
  messageId: string;
  startedAt: number;
  finishedAt: number | null;
  outcome: AttemptOutcome | null;
  errorCode: string | null;
  detail: string | null;
}

export type ContactSource = 'manual' | 'registry' | 'onion';

/** A key seen for a contact that the user has not approved yet (outbound mail to them is held). */
export interface KeyChange {
  identityKey: string;
  encryptionKey: string | null;
  onion: string | null;
  seenAt: number;
  /** Where the change came from and why it was not accepted, e.g. 'registry record v4 without rotation statement'. */
  reason: string;
  registryVersion?: number | null;
}

export interface Contact {
  /** As the user spelled it; unique ignoring case. */
  alias: string;
  identityKey: string;
  encryptionKey: string | null;
  onion: string;
  source: ContactSource;
  registryName: string | null;
  registryOwner: string | null;
  registryVersion: number | null;
  pinnedBundle: Uint8Array | null;
  pinnedAt: number | null;
  keyChange: KeyChange | null;
  notes: string | null;
  createdAt: number;
  updatedAt: number;
}

export type ContactInput = Omit<
  Contact,
  'createdAt' | 'updatedAt' | 'encryptionKey' | 'registryName' | 'registryOwner' | 'registryVersion' | 'pinnedBundle' | 'pinnedAt' | 'keyChange' | 'notes'
> &
  Partial<Pick<Contact, 'encryptionKey' | 'registryName' | 'registryOwner' | 'registryVersion' | 'pinnedBundle' | 'pinnedAt' | 'keyChange' | 'notes'>>;

export interface StoreCounts {
  queued: number;
  sending: number;
  delivered: number;
  failed: number;
  expired: number;
  held: number;
  /** Incoming messages stored. */
  inbox: number;
  /** Incoming messages not marked read. */
  unread: number;
}

export interface StoreDiagnostics {
  journalMode: string;
  /** 2 = FULL. */
  synchronous: number;
  foreignKeys: boolean;
  busyTimeoutMs: number;
  walAutocheckpointPages: number;
  journalSizeLimit: number;
  pageSize: number;
  pageCount: number;
  maxPageCount: number;
  /** PRAGMA quick_check: 'ok' or the first problem found. */
  quickCheck?: string;
}

export interface StoreOptions {
  /** The database file. Created 0600 if missing; its directory should be the 0700 data dir. */
  path: string;
  logger: Logger;
  /** Stamps events and contact rows. Default systemClock. */
  clock?: Clock;
  /** How long a writer waits for a lock held by another connection, ms. Default 5000. */
  busyTimeoutMs?: number;
  /** WAL pages before an automatic checkpoint (SQLite's default is 1000 ≈ 4 MiB). Default 1000. */
  walAutocheckpointPages?: number;
  /** Size the WAL file is truncated back to after a checkpoint, bytes. Default 16 MiB. */
  journalSizeLimit?: number;
  /**
   * Cap on the database size, bytes (PRAGMA max_page_count). Writes past it fail with DISK_FULL
   * like a full disk, before the disk itself fills. Default: no cap.
   */
  maxSizeBytes?: number;
  /** Added to a message's expires_at to decide how long its dedup row is kept, ms. Default 24 h (Limits.maxClockSkewMs). */
  dedupSkewMs?: number;
}

/**
 * The node's database. Every method is synchronous and either commits fully or not at all. Failures
 * are StoreErrors (DISK_FULL, CORRUPT, CONSTRAINT, NOT_FOUND, BAD_STATE, BUSY, CLOSED, IO).
 */
export interface Store {
  /** The file's schema version after opening (see schema.ts). */
  readonly schemaVersion: number;

  // ── outgoing ───────────────────────────────────────────────────────────────
  /**
   * Runs `fn` in one transaction (one fsync under synchronous=FULL): group commit for callers that
   * write many rows at once. Calls to other Store methods inside `fn` join it, without a savepoint
   * each: when one throws, let the error leave `fn` (the batch rolls back). A batch inside a batch
   * is a savepoint: catching its error inside the outer `fn` undoes just the inner writes.
   */
  batch<T>(fn: () => T): T;
  /**
   * Seals a message queued before its recipient's encryption key was known (queued with an empty
   * envelope). Throws BAD_STATE if the message already has an envelope: a message is sealed once,
   * so every retry sends the same bytes and gets the same receipt.
   */
  setEnvelope(id: string, envelope: Uint8Array, envelopeHash: Uint8Array): void;
  /** Stores a sealed outgoing message as queued (or held) with a 'queued'/'held' event. */
  insertOutgoing(m: NewOutgoing): StoredMessage;
  /** The message first sent with this idempotency key, or null. */
  sentWithKey(key: string): KeyedSend | null;
  /**
   * Moves a message to `to`, writing an event. `from` (if given) lists the states it may be in;
   * otherwise BAD_STATE. NOT_FOUND if absent.
   */
  transition(id: string, to: MessageState, opts?: { reason?: string | null; from?: readonly MessageState[]; errorCode?: string | null }): void;
  /** sending|queued → delivered, storing the peer's receipt. */
  markDelivered(id: string, receipt: Uint8Array, at: number): void;
  /**
   * Queued messages that are due at `now` (their own next_attempt_at and their peer's have passed),
   * earliest first, skipping `excludePeers`.
   */
  dueOutgoing(now: number, limit: number, opts?: { excludePeers?: Iterable<string> }): StoredMessage[];
  /**
   * Every peer with queued messages, skipping `excludePeers`, with the time its first one is due
   * and its failed steps; earliest first. One index seek per peer, whatever the backlog.
   */
  queuedPeers(opts?: { excludePeers?: Iterable<string> }): QueuedPeer[];
  /**
   * Up to `limit` queued messages to `peerIdentity` whose own next_attempt_at ≤ now, least recently
   * tried first (own next_attempt_at, then age). Does not look at the peer's backoff: the caller
   * asks for a peer that `queuedPeers` says is due.
   */
  dueForPeer(peerIdentity: string, now: number, limit: number): StoredMessage[];
  /**
   * When the outbox next has something to do: the earliest due time of a queued message (skipping
   * `excludePeers`, counting its peer's backoff) or expires_at of a queued/held one (all peers).
   * Null when idle.
   */
  nextDueAt(opts?: { excludePeers?: Iterable<string> }): number | null;
  /** The earliest expires_at of a queued or held message, or null. */
  nextExpiryAt(): number | null;
  /**
   * Queued or held messages with expires_at ≤ now become expired (with an event), earliest first,
   * at most `limit` of them (default: all). Returns their ids.
   */
  expireDue(now: number, limit?: number): string[];
  /**
   * queued → sending for a delivery attempt: the state, an event ('sending', at `at`) and the
   * attempt counted, in one transaction. The attempt's row is written once, at its outcome
   * (recordAttempt), or by resetInFlight for one a restart interrupted: until then listAttempts
   * does not show it. BAD_STATE unless queued, NOT_FOUND if absent.
   */
  beginAttempt(id: string, at: number): void;
  /** A finished attempt (begun with beginAttempt at `startedAt`), in one row. */
  recordAttempt(messageId: string, startedAt: number, finishedAt: number, outcome: AttemptOutcome, errorCode?: string | null, detail?: string | null): void;
  /** Records an open attempt and increments the message's attempt count; returns the attempt id. */
  recordAttemptStart(messageId: string, at: number): number;
  recordAttemptFinish(attemptId: number, at: number, outcome: AttemptOutcome, errorCode?: string | null, detail?: string | null): void;
  /**
   * sending → queued with its own next_attempt_at = nextAt and the error code (event 'queued',
   * detail = code). Writes this message only: the peer's backoff is `setPeerState`.
   */
  scheduleRetry(id: string, nextAt: number, errorCode: string, reason?: string | null): void;
  /** The peer's delivery state, or null if the outbox never recorded one. */
  peerState(peerIdentity: string): PeerState | null;
  /** Creates or updates the peer's delivery state (one row, whatever its queue holds). */
  setPeerState(peerIdentity: string, update: PeerStateUpdate): void;
  /**
   * The peer was seen online: its backoff is forgotten (no failed steps, due at `now`) and its
   * queued messages whose own next attempt is later become due at `now`. Returns the rows changed
   * (0 when the peer was not backing off: one primary-key lookup and one index seek).
   */
  makeDue(peerIdentity: string, now: number): number;
  /**
   * Every 'sending' row back to 'queued' (start-up after a crash), each interrupted attempt
   * recorded 'aborted' (begun at its last 'sending' event). Returns the count. Indexed: O(rows sending).
   */
  resetInFlight(): number;
  /** Every queued message to the peer becomes held with `reason`. Returns the count. */
  holdForPeer(identity: string, reason: string): number;
  /** Every held message to the peer becomes queued and due now. Returns the count. */
  releaseHeld(identity: string): number;
  listEvents(id: string): MessageEvent[];
  listAttempts(id: string): Attempt[];

  // ── incoming ───────────────────────────────────────────────────────────────
  /**
   * Atomically: if the id was seen, store nothing and return the stored receipt; otherwise store the
   * message and its dedup row. Returns once committed (synchronous=FULL), so the receipt may be sent.
   */
  commitIncoming(m: NewIncoming): CommitResult;
  /** commitIncoming for many messages in one transaction (one fsync). Results in input order. */
  commitIncomingBatch(ms: readonly NewIncoming[]): CommitResult[];
  /** Deletes dedup rows whose keep_until < now. Returns the count. */
  pruneSeen(now: number): number;

  // ── reading ────────────────────────────────────────────────────────────────
  getMessage(id: string): StoredMessage | null;
  /** Newest first (by received_at for incoming, created_at for outgoing). */
  listMessages(opts?: ListOptions): StoredMessage[];
  /** Conversations, most recently active first. */
  listThreads(opts?: { limit?: number }): ThreadSummary[];
  /** Marks an incoming message read. NOT_FOUND if absent. */
  markRead(id: string, read?: boolean): void;
  /**
   * The peer's read receipt (PROTOCOL.md §9.2): of `ids`, our outgoing messages to `peerIdentity`
   * not marked yet get peer_read_at = `at`. Returns those it marked (others' ids mark nothing).
   */
  markPeerRead(peerIdentity: string, ids: readonly string[], at: number): string[];
  /** Deletes control messages that are delivered, failed or expired. Returns the count. */
  pruneControl(): number;
  counts(): StoreCounts;

  // ── everyday use: search, archive, delete, attachments, drafts (mailbox.ts) ──
  /**
   * Messages whose sender, subject or body contain every word of `query` (word prefixes, case and
   * accents ignored), plus those to or from a contact whose alias or registry name starts with the
   * whole query. Newest first. An empty query finds nothing.
   */
  search(query: string, opts?: SearchOptions): StoredMessage[];
  /** Moves a message out of the inbox (or back). NOT_FOUND if absent. */
  setArchived(id: string, archived: boolean): void;
  /**
   * Deletes a message with its content, attachments, events and attempts; secure_delete overwrites
   * the freed pages and the search index drops its terms. The dedup row stays, so a replay of a
   * deleted message is not taken as new. BAD_STATE for an outgoing message still queued, sending or
   * held (cancel it first); returns false if there was no such message.
   */
  deleteMessage(id: string): boolean;
  /** The files a message carries, in order. */
  getAttachments(messageId: string): StoredAttachment[];
  /** Inserts or replaces a draft (its attachments too). */
  saveDraft(d: DraftInput): Draft;
  getDraft(id: string): Draft | null;
  /** Most recently edited first; attachments without their data (`data` empty). */
  listDrafts(opts?: { limit?: number }): Draft[];
  /** True if a draft was removed. */
  deleteDraft(id: string): boolean;
  /** Makes a queued message due now (the user asked to retry). False if it is not queued. */
  retryNow(id: string, now: number): boolean;
  /** Records (or, with null name, forgets) a sender's verified registry name. */
  setPeerName(identityKey: string, name: string | null, owner?: string | null): void;
  /** Every verified sender name, by identity key. */
  peerNames(): Map<string, PeerName>;
  getPeerName(identityKey: string): PeerName | null;
  /** Records a rejected key change for the contact pinned to `contactIdentity` (null: forget it). */
  setRejectedKey(contactIdentity: string, rejected: Omit<RejectedKey, 'contactIdentity' | 'rejectedAt'> | null): void;
  getRejectedKey(contactIdentity: string): RejectedKey | null;

  // ── contacts ───────────────────────────────────────────────────────────────
  /** Inserts or replaces the contact with this alias (case-insensitive). CONSTRAINT if the identity belongs to another alias. */
  upsertContact(c: ContactInput): Contact;
  /** By alias (case-insensitive) or identity key hex. */
  getContact(aliasOrIdentity: string): Contact | null;
  listContacts(): Contact[];
  /** True if a contact was removed. */
  removeContact(alias: string): boolean;
  /** Records (or clears, with null) an unapproved key change. NOT_FOUND if no such contact. */
  setKeyChange(alias: string, info: KeyChange | null): void;

  // ── mail bridge ────────────────────────────────────────────────────────────
  /** The mail bridge's IMAP folders (mail-folders.ts), on this same database. */
  readonly mailFolders: MailFolders;

  // ── sessions ───────────────────────────────────────────────────────────────
  /** Ratchet states, prekeys, skipped keys, seen tags, receipt keys (sessions.ts), on this same database. */
  readonly sessions: SessionStore;

  // ── mailbox providers ──────────────────────────────────────────────────────
  /** The mailbox providers this user subscribed at (mailbox-providers.ts), on this same database. */
  readonly mailboxProviders: MailboxProviders;
  /** Offline delivery: deposits at providers and the providers peers list (deposits.ts). */
  readonly deposits: Deposits;
  /** Contact queues: ours for each contact, and those contacts handed us (contact-queues.ts). */
  readonly contactQueues: ContactQueueStore;
  /** What this node saw mailbox providers do, for their reputation (provider-reputation.ts). */
  readonly providerReputations: ProviderReputations;

  // ── settings and housekeeping ──────────────────────────────────────────────
  getSetting(key: string): string | null;
  setSetting(key: string, value: string | null): void;
  /** The connection's durability settings and size, for `status` and tests. */
  diagnostics(opts?: { quickCheck?: boolean }): StoreDiagnostics;
  /** Runs wal_checkpoint(TRUNCATE); call when idle to keep the WAL small. */
  checkpoint(): void;
  /** Idempotent. Later calls to other methods throw CLOSED. */
  close(): void;
}
