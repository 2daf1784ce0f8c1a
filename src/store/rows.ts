/**
 * The one place where SQLite rows (snake_case, integers for booleans, Buffers for BLOBs) become the
 * store's camelCase objects, and back.
 */
import type {
  Attempt, AttemptOutcome, Contact, ContactSource, ControlKind, KeyChange, MessageEvent, MessageKind, MessageState, PeerState, StoredMessage,
  Direction,
} from './types.js';

export interface MessageRow {
  id: string;
  direction: string;
  kind: string;
  peer_identity: string;
  peer_onion: string | null;
  peer_label: string | null;
  subject: string | null;
  body: string;
  thread_id: string;
  in_reply_to: string | null;
  created_at: number;
  expires_at: number;
  received_at: number | null;
  delivered_at: number | null;
  sort_at: number;
  state: string;
  state_reason: string | null;
  envelope: Buffer | null;
  envelope_hash: Buffer | null;
  receipt: Buffer | null;
  read: number;
  attempts: number;
  next_attempt_at: number | null;
  /** The peer's next attempt (peer_state), where the query joins it (message_rows does). */
  peer_next_attempt_at?: number | null;
  last_error_code: string | null;
  archived: number;
  attachment_count: number;
  /** JSON array of the providers holding the current envelope (outgoing, migration v12), or null. */
  mailboxes: string | null;
  /** The control kind of an outgoing control message (migration v15), else null. */
  control: string | null;
  peer_read_at: number | null;
}

export interface ContactRow {
  alias_key: string;
  alias: string;
  identity_key: string;
  encryption_key: string | null;
  onion: string;
  source: string;
  registry_name: string | null;
  registry_owner: string | null;
  registry_version: number | null;
  pinned_bundle: Buffer | null;
  pinned_at: number | null;
  key_change: string | null;
  notes: string | null;
  created_at: number;
  updated_at: number;
}

export interface AttemptRow {
  id: number;
  message_id: string;
  started_at: number;
  finished_at: number | null;
  outcome: string | null;
  error_code: string | null;
  detail: string | null;
}

export interface PeerStateRow {
  peer_identity: string;
  failures: number;
  next_attempt_at: number;
  last_error_code: string | null;
  last_failure_at: number | null;
  last_success_at: number | null;
  updated_at: number;
}

/** A plain Uint8Array view (Buffers compare unequal to Uint8Arrays under deepStrictEqual). */
export function bytes(b: Buffer | Uint8Array): Uint8Array;
export function bytes(b: Buffer | Uint8Array | null): Uint8Array | null;
export function bytes(b: Buffer | Uint8Array | null): Uint8Array | null {
  if (b === null) return null;
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** Whether a kind is a control message's (PROTOCOL.md §9.2), which no listing shows. */
export function isControlKind(kind: string): kind is ControlKind {
  return kind === 'read' || kind === 'queues' || kind === 'onion';
}

export function messageFromRow(r: MessageRow): StoredMessage {
  return {
    id: r.id,
    direction: r.direction as Direction,
    kind: (r.control ?? r.kind) as MessageKind | ControlKind,
    peerIdentity: r.peer_identity,
    peerOnion: r.peer_onion,
    peerLabel: r.peer_label,
    subject: r.subject,
    body: r.body,
    threadId: r.thread_id,
    inReplyTo: r.in_reply_to,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    receivedAt: r.received_at,
    deliveredAt: r.delivered_at,
    state: r.state as MessageState,
    stateReason: r.state_reason,
    envelope: bytes(r.envelope),
    envelopeHash: bytes(r.envelope_hash),
    receipt: bytes(r.receipt),
    read: r.read === 1,
    attempts: r.attempts,
    // A queued message is tried when both its own time and its peer's backoff have passed.
    nextAttemptAt: r.state === 'queued' && r.next_attempt_at !== null && (r.peer_next_attempt_at ?? 0) > r.next_attempt_at
      ? r.peer_next_attempt_at!
      : r.next_attempt_at,
    lastErrorCode: r.last_error_code,
    archived: r.archived === 1,
    attachmentCount: r.attachment_count,
    mailboxes: r.mailboxes ? (JSON.parse(r.mailboxes) as string[]) : [],
    peerReadAt: r.peer_read_at ?? null,
  };
}

export function contactFromRow(r: ContactRow): Contact {
  return {
    alias: r.alias,
    identityKey: r.identity_key,
    encryptionKey: r.encryption_key,
    onion: r.onion,
    source: r.source as ContactSource,
    registryName: r.registry_name,
    registryOwner: r.registry_owner,
    registryVersion: r.registry_version,
    pinnedBundle: bytes(r.pinned_bundle),
    pinnedAt: r.pinned_at,
    keyChange: r.key_change === null ? null : (JSON.parse(r.key_change) as KeyChange),
    notes: r.notes,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function attemptFromRow(r: AttemptRow): Attempt {
  return {
    id: r.id,
    messageId: r.message_id,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    outcome: r.outcome as AttemptOutcome | null,
    errorCode: r.error_code,
    detail: r.detail,
  };
}

export function peerStateFromRow(r: PeerStateRow): PeerState {
  return {
    peerIdentity: r.peer_identity,
    failures: r.failures,
    nextAttemptAt: r.next_attempt_at,
    lastErrorCode: r.last_error_code,
    lastFailureAt: r.last_failure_at,
    lastSuccessAt: r.last_success_at,
    updatedAt: r.updated_at,
  };
}

export function eventFromRow(r: { at: number; state: string; detail: string | null }): MessageEvent {
  return { at: r.at, state: r.state as MessageState, detail: r.detail };
}

/** Aliases compare equal ignoring case and Unicode compatibility forms. */
export function aliasKey(alias: string): string {
  return alias.trim().normalize('NFKC').toLowerCase();
}
