/**
 * The API's method handlers and the views they return (the shapes the CLI and the web UI read).
 * They take the node's collaborators as explicit dependencies; the methods' parameters are
 * validated against methods.ts before a handler runs.
 */
import { toHex } from '../bytes.js';
import { OnionpostError } from '../errors.js';
import type { VerifiedRecord } from '../registry/index.js';
import type { Contact, Store, StoredMessage } from '../store/index.js';
import type { Handler } from './server.js';

export type HandlerErrorCode =
  | 'NOT_FOUND' // no message with that id or prefix
  | 'AMBIGUOUS_ID'; // a message id prefix that matches several messages

export class HandlerError extends OnionpostError<HandlerErrorCode> {}

/** What the handlers need from the node. */
export interface HandlerDeps {
  /** Our onion address and public keys. */
  address(): { onion: string; identityKey: string; encryptionKey: string };
  status(): unknown;
  /** The node's store (throws before the node started). */
  store(): Store;
  send(params: Record<string, unknown>): Promise<unknown>;
  addContact(alias: string, address: string): Promise<Contact>;
  approveKeyChange(alias: string): Contact;
  lookup(nameOrOwner: string): Promise<VerifiedRecord>;
  /** Where a mail client connects to the mail bridge; throws when it is off. */
  bridgeSettings(): unknown;
  /** Tells subscribers (the web UI, the mail bridge) something changed, e.g. `message.read`. */
  emit(ev: { type: string; [k: string]: unknown }): void;
}

/** Summary shape shared by the API, the CLI and the web UI. */
export function summary(m: StoredMessage) {
  const out: Record<string, unknown> = {
    id: m.id, direction: m.direction, kind: m.kind, subject: m.subject ?? '', state: m.state, createdAt: m.createdAt,
    threadId: m.threadId, read: m.read, attempts: m.attempts,
  };
  if (m.direction === 'in') Object.assign(out, { from: m.peerOnion, receivedAt: m.receivedAt });
  else Object.assign(out, { to: m.peerOnion, deliveredAt: m.deliveredAt ?? undefined });
  if (m.peerLabel) out.peerLabel = m.peerLabel;
  if (m.stateReason && m.state !== 'delivered') out.reason = m.stateReason;
  return out;
}

export function contactView(c: Contact) {
  return {
    alias: c.alias, onion: c.onion, identityKey: c.identityKey, encryptionKey: c.encryptionKey, source: c.source,
    registryName: c.registryName, registryVersion: c.registryVersion, pinnedAt: c.pinnedAt, keyChange: c.keyChange,
  };
}

export function recordView(rec: VerifiedRecord) {
  return {
    name: rec.name, owner: rec.owner, onion: rec.onion, identityKey: toHex(rec.identityKey), encryptionKey: toHex(rec.encryptionKey),
    mailboxes: rec.mailboxes, version: rec.version, contract: rec.contract, rotation: rec.rotation ? { from: toHex(rec.rotation.oldIdentity) } : null,
  };
}

/** A message by id or unique id prefix. */
function findMessage(store: Store, idOrPrefix: string): StoredMessage {
  const matches = store.listMessages({ idPrefix: idOrPrefix.toLowerCase(), limit: 2 });
  if (matches.length === 0) throw new HandlerError('NOT_FOUND', `no message ${idOrPrefix}`);
  if (matches.length > 1 && matches[0]!.id !== idOrPrefix.toLowerCase()) {
    throw new HandlerError('AMBIGUOUS_ID', `${idOrPrefix} matches more than one message; give more characters`);
  }
  return matches[0]!;
}

/** The handler of every method in API_METHODS except the WebSocket-only ones. */
export function createHandlers(d: HandlerDeps): Record<string, Handler> {
  const p = <T>(x: Record<string, unknown>) => x as T;
  return {
    'node.address': () => d.address(),
    'node.status': () => d.status(),
    'messages.send': (x) => d.send(x),
    'messages.inbox': (x) => {
      const q = p<{ limit?: number; before?: number; kind?: 'mail' | 'chat' }>(x);
      return d.store().listMessages({ direction: 'in', limit: q.limit ?? 50, ...(q.before ? { before: q.before } : {}), ...(q.kind ? { kind: q.kind } : {}) }).map(summary);
    },
    'messages.outbox': (x) => {
      const q = p<{ limit?: number; before?: number }>(x);
      return d.store().listMessages({ direction: 'out', limit: q.limit ?? 50, ...(q.before ? { before: q.before } : {}) }).map(summary);
    },
    'messages.get': (x) => {
      const store = d.store();
      const m = findMessage(store, p<{ id: string }>(x).id);
      if (m.direction === 'in' && !m.read) {
        store.markRead(m.id);
        d.emit({ type: 'message.read', id: m.id });
      }
      return { ...summary(m), read: m.direction === 'in' ? true : m.read, body: m.body, inReplyTo: m.inReplyTo, expiresAt: m.expiresAt, events: store.listEvents(m.id) };
    },
    'messages.thread': (x) => d.store().listMessages({ thread: p<{ threadId: string }>(x).threadId, limit: 1000 }).map(summary).reverse(),
    'bridge.settings': () => d.bridgeSettings(),
    'contacts.list': () => d.store().listContacts().map(contactView),
    'contacts.add': async (x) => {
      const q = p<{ alias: string; address: string }>(x);
      return contactView(await d.addContact(q.alias, q.address));
    },
    'contacts.remove': (x) => ({ removed: d.store().removeContact(p<{ alias: string }>(x).alias) }),
    'contacts.approveKeyChange': (x) => contactView(d.approveKeyChange(p<{ alias: string }>(x).alias)),
    'registry.lookup': async (x) => recordView(await d.lookup(p<{ name: string }>(x).name)),
  };
}
