/**
 * store/: the node's SQLite database (messages both ways, outbox state, inbound dedup, contacts with
 * pinned keys, settings). Open it once per node with `openStore`; every method is synchronous.
 */
export { openStore, STORE_DEFAULTS } from './store.js';
export { isControlKind } from './rows.js';
/**
 * The setting naming the identity key (hex) the node last ran under. A node opened under another
 * key resets the sessions the old key made (src/node); `onionpost keys rotate` records the old key
 * here before it replaces the key file, if no node ever did.
 */
export const OWN_IDENTITY_SETTING = 'node.identityKey';
export { StoreError, toStoreError, type StoreErrorCode } from './errors.js';
export { openDatabase, type DatabaseOptions } from './database.js';
export { MIGRATIONS, SCHEMA_VERSION, migrate, type Migration } from './schema.js';
export type {
  Attempt, AttemptOutcome, CommitResult, Contact, ContactInput, KeyedSend, ContactSource, ControlKind, Direction, Draft, DraftInput, InState, KeyChange, ListOptions,
  MessageEvent, MessageKind, MessageState, NewIncoming, NewOutgoing, OutState, PeerState, PeerStateUpdate, QueuedPeer, Store, StoreCounts,
  StoreDiagnostics, StoreOptions, PeerName, RejectedKey, SearchOptions, StoredAttachment, StoredMessage, ThreadSummary,
} from './types.js';
export { MAIL_FOLDER_NAMES, type MailFolderEntry, type MailFolderInfo, type MailFolderName, type MailFolders } from './mail-folders.js';
export type { MailboxProvider, MailboxProviders, ProviderAccount } from './mailbox-providers.js';
export type { Deposit, Deposits } from './deposits.js';
export type { ContactQueueStore, QueueAt } from './contact-queues.js';
export { EVENTS_KEPT, type FinishedDeposit, type ProviderEvent, type ProviderReputations, type StoredTally } from './provider-reputation.js';
export type {
  NewSession, OutgoingKey, PruneResult, SeenEnvelope, SessionRole, SessionStore, SignedPrekeyKind, StoredOneTimePrekey, StoredPrekey,
  StoredSession, StoredSignedPrekey, StoredSkippedKey,
} from './sessions.js';
