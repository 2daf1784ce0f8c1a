/**
 * What the bridge needs from the node, and nothing more: the port it talks through. The node's
 * adapter (src/node/mail-port.ts) implements it from the node's public methods; tests can too.
 *
 * The bridge never sees keys, envelopes or the network. Errors thrown by a port method are
 * OnionpostErrors whose `code` the SMTP side maps to a reply (UNKNOWN_RECIPIENT, NO_REGISTRY,
 * BAD_ONION_ADDRESS, SELF → 550; TOO_LARGE → 552; anything else → 451, try again later).
 */
import type { ParsedAddress } from './address.js';

export interface MailAttachment {
  name: string;
  mediaType: string;
  data: Uint8Array;
}

/** The other party of a message, as the bridge writes it in From/To. */
export interface MailPeer {
  onion: string | null;
  /** Verified registry name, when the peer is a registry contact (then replies go to name@…). */
  registryName: string | null;
  /** Contact alias or label, for the display name. */
  label: string | null;
}

/** One onionpost message, either direction, with its content. Ids are 32 hex characters. */
export interface MailMessage {
  id: string;
  direction: 'in' | 'out';
  kind: 'mail' | 'chat';
  peer: MailPeer;
  subject: string;
  body: string;
  attachments: MailAttachment[];
  threadId: string;
  inReplyTo: string | null;
  /** Sender's clock, ms. */
  createdAt: number;
  receivedAt: number | null;
  expiresAt: number;
  state: string;
  stateReason: string | null;
}

/** A message to send, made from one SMTP submission for one recipient. */
export interface MailDraft {
  /** What the node resolves: a name/alias, or an onion address. */
  to: string;
  subject: string;
  body: string;
  attachments: MailAttachment[];
  threadId?: string;
  inReplyTo?: string;
}

export interface MailRecipient {
  /** What to put in MailDraft.to. */
  to: string;
  onion: string;
  label: string | null;
}

/** The IMAP folders with their stable UIDs (implemented by the store, src/store/mail-folders.ts). */
export interface FolderStore {
  sync(): boolean;
  info(folder: string): { name: FolderName; uidValidity: number; uidNext: number } | null;
  list(): { name: FolderName; uidValidity: number; uidNext: number }[];
  entries(folder: FolderName): FolderEntry[];
  setFlags(folder: FolderName, uid: number, flags: readonly string[]): void;
  copy(from: FolderName, uids: readonly number[], to: FolderName): [number, number][];
  expunge(folder: FolderName, uids: readonly number[]): void;
}

export type FolderName = 'INBOX' | 'Sent' | 'Trash';

export interface FolderEntry {
  uid: number;
  /** A message id, or 'dsn:<message id>:<state>' for a bounce. */
  ref: string;
  flags: string[];
  version: string | null;
  addedAt: number;
}

export interface MailPort {
  /** The user's own address in the bridge's scheme (also the login name). */
  readonly ownAddress: string;
  /** Checks that an address names someone the node can send to (RCPT time). */
  resolve(address: ParsedAddress, opts: { signal: AbortSignal }): Promise<MailRecipient>;
  /** Queues a message; resolves once it is stored (delivery goes on in the node's outbox). */
  send(draft: MailDraft, opts: { signal: AbortSignal }): Promise<{ id: string; state: string }>;
  /** A message with its attachments, or null when the node has none with this id. */
  getMessage(id: string): MailMessage | null;
  /** Largest subject + body + files a message may carry, bytes (crypto's MESSAGE_CAPACITY). */
  readonly maxContentBytes: number;
  folders: FolderStore;
  /** Called when mail arrives, a delivery state changes or a message is read elsewhere. */
  subscribe(listener: () => void): () => void;
}
