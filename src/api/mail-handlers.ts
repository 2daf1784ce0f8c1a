/**
 * The messages.* and drafts.* handlers and the message views they return: who a message is from
 * or to by name (the contact alias, else the verified registry name, else null with a short
 * fingerprint), a preview line, files, and for outgoing mail why it is where it is, in plain words.
 */
import { OnionpostError } from '../errors.js';
import type { Store, StoredAttachment, StoredMessage } from '../store/index.js';
import { deliveryView } from './delivery.js';
import type { Handler } from './server.js';

export type MailHandlerErrorCode =
  | 'NOT_FOUND' // no message, file or draft with that id
  | 'AMBIGUOUS_ID' // a message id prefix that matches several messages
  | 'BAD_STATE' // the message is not in a state the call applies to (cancel a delivered one, retry a held one)
  | 'BAD_ATTACHMENT'; // a file whose data is not base64

export class MailHandlerError extends OnionpostError<MailHandlerErrorCode> {}

/** What these handlers need from the node. */
export interface MailDeps {
  store(): Store;
  send(params: Record<string, unknown>): Promise<unknown>;
  /** Tells subscribers something changed (`message.read` for the mail bridge and other views). */
  emit(ev: { type: string; [k: string]: unknown }): void;
  /** Makes a queued message due now and wakes the outbox; false when it is not queued. */
  retryNow(id: string): boolean;
  limits(): { maxAttachments: number; capacity: number; maxNameBytes: number };
  /** The identity key (hex) an onion address, alias or identity key names, or null. */
  peerIdentity(peer: string): string | null;
  /** Whether we send read receipts for contacts' chat messages we read (off until the user allows it). */
  readReceipts: { enabled(): boolean; setEnabled(on: boolean): void };
}

/** Who people are, for one listing: contact aliases and verified registry names by identity key. */
export interface Names {
  alias(identityKey: string): string | null;
  name(identityKey: string): string | null;
}

export function namesOf(store: Store): Names {
  const aliases = new Map(store.listContacts().map((c) => [c.identityKey, c.alias]));
  const verified = store.peerNames();
  return {
    alias: (k) => aliases.get(k) ?? null,
    name: (k) => aliases.get(k) ?? verified.get(k)?.name ?? null,
  };
}

/** "1a2b 3c4d 5e6f 7a8b": the start of an identity key, for telling strangers apart. */
export function shortFingerprint(identityKey: string): string {
  return identityKey.slice(0, 16).match(/.{4}/g)!.join(' ');
}

/** The start of a body on one line. */
export function preview(body: string, n = 120): string {
  const one = body.replace(/\s+/g, ' ').trim();
  return one.length > n ? `${one.slice(0, n - 1)}…` : one;
}

/** Summary shape shared by the API, the CLI and the web UI. `attempts` only matter for outgoing mail. */
export function summary(m: StoredMessage, names?: Names, store?: Store) {
  const out: Record<string, unknown> = {
    id: m.id, direction: m.direction, kind: m.kind, subject: m.subject ?? '', state: m.state, createdAt: m.createdAt,
    threadId: m.threadId, read: m.read, attempts: m.attempts, preview: preview(m.body), attachmentCount: m.attachmentCount, archived: m.archived,
  };
  const name = names?.name(m.peerIdentity) ?? null;
  if (m.direction === 'in') Object.assign(out, { from: m.peerOnion, receivedAt: m.receivedAt, fromName: name });
  else Object.assign(out, { to: m.peerOnion, deliveredAt: m.deliveredAt ?? undefined, toName: name ?? m.peerLabel, readAt: m.peerReadAt ?? undefined });
  if (!name) out.peerFingerprint = shortFingerprint(m.peerIdentity);
  if (m.peerLabel) out.peerLabel = m.peerLabel;
  if (m.stateReason && m.state !== 'delivered') out.reason = m.stateReason;
  // Left at the recipient's providers, not yet receipted by the recipient: "in mailbox".
  if (m.direction === 'out' && m.mailboxes.length > 0 && (m.state === 'queued' || m.state === 'sending')) Object.assign(out, { state: 'in_mailbox', mailboxes: m.mailboxes });
  if (store && m.direction === 'out' && m.state !== 'delivered') {
    const attempts = m.attempts > 0 ? store.listAttempts(m.id) : [];
    out.delivery = deliveryView(m, attempts, name ?? m.peerLabel ?? 'the recipient', m.state === 'queued' ? store.peerState(m.peerIdentity) : null);
  }
  return out;
}

/** A message by id or unique id prefix. */
export function findMessage(store: Store, idOrPrefix: string): StoredMessage {
  const matches = store.listMessages({ idPrefix: idOrPrefix.toLowerCase(), limit: 2 });
  if (matches.length === 0) throw new MailHandlerError('NOT_FOUND', `no message ${idOrPrefix}`);
  if (matches.length > 1 && matches[0]!.id !== idOrPrefix.toLowerCase()) {
    throw new MailHandlerError('AMBIGUOUS_ID', `${idOrPrefix} matches more than one message; give more characters`);
  }
  return matches[0]!;
}

type FileParam = { name: string; mediaType: string; data: string };

/** Files from the API (base64) to bytes; refuses anything that is not plain base64. */
export function decodeFiles(files: readonly FileParam[] | undefined): StoredAttachment[] {
  return (files ?? []).map((f) => {
    if (f.data.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(f.data)) throw new MailHandlerError('BAD_ATTACHMENT', `the data of ${f.name} is not base64`);
    const b = Buffer.from(f.data, 'base64');
    return { name: f.name, mediaType: f.mediaType, data: new Uint8Array(b.buffer, b.byteOffset, b.byteLength) };
  });
}

const fileInfo = (a: StoredAttachment, index: number) => ({ index, name: a.name, mediaType: a.mediaType, size: a.data.length });
const b64 = (d: Uint8Array) => Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('base64');

export function createMailHandlers(d: MailDeps): Record<string, Handler> {
  const p = <T>(x: Record<string, unknown>) => x as T;
  /** Full message: summary, body, files (without data), history. */
  const full = (store: Store, m: StoredMessage, names: Names) => ({
    ...summary(m, names, store), body: m.body, inReplyTo: m.inReplyTo, expiresAt: m.expiresAt, events: store.listEvents(m.id),
    attachments: m.attachmentCount > 0 ? store.getAttachments(m.id).map(fileInfo) : [],
  });
  const markRead = (store: Store, id: string, read: boolean) => {
    store.markRead(id, read);
    d.emit({ type: 'message.read', id, read });
  };
  return {
    'messages.send': async (x) => {
      const q = p<Record<string, unknown> & { attachments?: FileParam[]; draftId?: string }>(x);
      const { draftId, attachments, ...rest } = q;
      const r = await d.send({ ...rest, ...(attachments?.length ? { attachments: decodeFiles(attachments) } : {}) });
      if (draftId) d.store().deleteDraft(draftId);
      return r;
    },
    'messages.inbox': (x) => {
      const q = p<{ limit?: number; before?: number; kind?: 'mail' | 'chat'; archived?: boolean }>(x);
      const store = d.store();
      const names = namesOf(store);
      return store.listMessages({
        direction: 'in', limit: q.limit ?? 50, archived: q.archived ?? false, ...(q.before ? { before: q.before } : {}), ...(q.kind ? { kind: q.kind } : {}),
      }).map((m) => summary(m, names));
    },
    'messages.outbox': (x) => {
      const q = p<{ limit?: number; before?: number; view?: 'all' | 'pending' | 'delivered' }>(x);
      const store = d.store();
      const names = namesOf(store);
      const states = q.view === 'delivered' ? (['delivered'] as const) : q.view === 'pending' ? (['queued', 'sending', 'held', 'failed', 'expired'] as const) : undefined;
      return store.listMessages({ direction: 'out', limit: q.limit ?? 50, ...(q.before ? { before: q.before } : {}), ...(states ? { states } : {}) })
        .map((m) => summary(m, names, store));
    },
    'messages.get': (x) => {
      const store = d.store();
      const m = findMessage(store, p<{ id: string }>(x).id);
      if (m.direction === 'in' && !m.read) markRead(store, m.id, true);
      return { ...full(store, m, namesOf(store)), read: m.direction === 'in' ? true : m.read };
    },
    'messages.thread': (x) => {
      const store = d.store();
      const names = namesOf(store);
      return store.listMessages({ thread: p<{ threadId: string }>(x).threadId, limit: 1000 }).map((m) => summary(m, names, store)).reverse();
    },
    'messages.search': (x) => {
      const q = p<{ query: string; limit?: number; direction?: 'in' | 'out' }>(x);
      const store = d.store();
      const names = namesOf(store);
      return store.search(q.query, { limit: q.limit ?? 50, ...(q.direction ? { direction: q.direction } : {}) }).map((m) => summary(m, names, store));
    },
    'messages.conversations': (x) => {
      const store = d.store();
      const names = namesOf(store);
      const limit = p<{ limit?: number }>(x).limit ?? 100;
      const by = new Map<string, { last: StoredMessage; unread: number }>();
      // Newest first, so the first row of each peer is its last message.
      for (const m of store.listMessages({ kind: 'chat', limit: 1000 })) {
        const c = by.get(m.peerIdentity);
        if (!c) by.set(m.peerIdentity, { last: m, unread: m.direction === 'in' && !m.read ? 1 : 0 });
        else if (m.direction === 'in' && !m.read) c.unread++;
      }
      return [...by.entries()].slice(0, limit).map(([k, c]) => ({
        peer: c.last.peerOnion, identityKey: k, name: names.name(k), contact: names.alias(k), fingerprint: shortFingerprint(k),
        lastAt: c.last.receivedAt ?? c.last.createdAt, lastDirection: c.last.direction, preview: preview(c.last.body, 80), unread: c.unread,
      }));
    },
    'messages.conversation': (x) => {
      const q = p<{ peer: string; limit?: number; markRead?: boolean }>(x);
      const store = d.store();
      const k = d.peerIdentity(q.peer);
      if (!k) throw new MailHandlerError('NOT_FOUND', `"${q.peer}" is not an onion address, a contact or an identity key`);
      const names = namesOf(store);
      const msgs = store.listMessages({ kind: 'chat', peer: k, limit: q.limit ?? 200 }).reverse();
      if (q.markRead) for (const m of msgs) if (m.direction === 'in' && !m.read) markRead(store, m.id, true);
      const contact = store.getContact(k);
      return {
        peer: contact?.onion ?? msgs[0]?.peerOnion ?? q.peer, identityKey: k, name: names.name(k), contact: contact?.alias ?? null, fingerprint: shortFingerprint(k),
        messages: msgs.map((m) => ({ ...summary(m, names, store), read: m.direction === 'in' && q.markRead ? true : m.read, body: m.body })),
      };
    },
    'messages.attachment': (x) => {
      const q = p<{ id: string; index: number }>(x);
      const store = d.store();
      const m = findMessage(store, q.id);
      const a = store.getAttachments(m.id)[q.index];
      if (!a) throw new MailHandlerError('NOT_FOUND', `message ${m.id} has no file ${q.index}`);
      return { ...fileInfo(a, q.index), data: b64(a.data) };
    },
    'messages.archive': (x) => {
      const q = p<{ id: string; archived?: boolean }>(x);
      const store = d.store();
      const m = findMessage(store, q.id);
      store.setArchived(m.id, q.archived ?? true);
      return { id: m.id, archived: q.archived ?? true };
    },
    'messages.markRead': (x) => {
      const q = p<{ id: string; read?: boolean }>(x);
      const store = d.store();
      const m = findMessage(store, q.id);
      if (m.direction !== 'in') throw new MailHandlerError('BAD_STATE', 'only received messages are read or unread');
      markRead(store, m.id, q.read ?? true);
      return { id: m.id, read: q.read ?? true };
    },
    'messages.delete': (x) => {
      const store = d.store();
      const m = findMessage(store, p<{ id: string }>(x).id);
      const deleted = store.deleteMessage(m.id);
      if (deleted) d.emit({ type: 'message.deleted', id: m.id });
      return { id: m.id, deleted };
    },
    'messages.retryNow': (x) => {
      const store = d.store();
      const m = findMessage(store, p<{ id: string }>(x).id);
      // Being tried at this very moment is what was asked for.
      if (m.state === 'sending') return { id: m.id, state: 'sending' };
      if (!d.retryNow(m.id)) throw new MailHandlerError('BAD_STATE', `message ${m.id} is ${m.state}, not waiting for a retry`);
      return { id: m.id, state: 'queued' };
    },
    'messages.cancel': (x) => {
      const store = d.store();
      const m = findMessage(store, p<{ id: string }>(x).id);
      if (m.direction !== 'out' || (m.state !== 'queued' && m.state !== 'held')) {
        throw new MailHandlerError('BAD_STATE', m.state === 'sending' ? 'it is being handed over right now; try again in a moment' : `message ${m.id} is ${m.state}: nothing to cancel`);
      }
      store.transition(m.id, 'failed', { from: ['queued', 'held'], reason: 'cancelled by you', errorCode: 'CANCELLED' });
      d.emit({ type: 'message.state', id: m.id, state: 'failed', code: 'CANCELLED', reason: 'cancelled by you' });
      return { id: m.id, state: 'failed' };
    },
    'messages.limits': () => d.limits(),
    'settings.get': () => ({ readReceipts: d.readReceipts.enabled() }),
    'settings.set': (x) => {
      const q = p<{ readReceipts?: boolean }>(x);
      if (q.readReceipts !== undefined) d.readReceipts.setEnabled(q.readReceipts);
      return { readReceipts: d.readReceipts.enabled() };
    },
    'drafts.list': (x) => d.store().listDrafts({ limit: p<{ limit?: number }>(x).limit ?? 50 }).map((dr) => ({
      id: dr.id, kind: dr.kind, to: dr.to, subject: dr.subject, preview: preview(dr.body), threadId: dr.threadId, inReplyTo: dr.inReplyTo,
      attachments: dr.attachments.map((a) => ({ name: a.name, mediaType: a.mediaType })), createdAt: dr.createdAt, updatedAt: dr.updatedAt,
    })),
    'drafts.get': (x) => {
      const dr = d.store().getDraft(p<{ id: string }>(x).id.toLowerCase());
      if (!dr) throw new MailHandlerError('NOT_FOUND', 'no such draft');
      return { ...dr, attachments: dr.attachments.map((a, i) => ({ ...fileInfo(a, i), data: b64(a.data) })) };
    },
    'drafts.save': (x) => {
      const q = p<{ id: string; kind?: 'mail' | 'chat'; to?: string; subject?: string; body?: string; threadId?: string; inReplyTo?: string; attachments?: FileParam[] }>(x);
      const dr = d.store().saveDraft({
        id: q.id.toLowerCase(), kind: q.kind ?? 'mail', to: q.to ?? '', subject: q.subject ?? '', body: q.body ?? '',
        threadId: q.threadId ?? null, inReplyTo: q.inReplyTo ?? null, attachments: decodeFiles(q.attachments),
      });
      return { id: dr.id, updatedAt: dr.updatedAt };
    },
    'drafts.delete': (x) => ({ deleted: d.store().deleteDraft(p<{ id: string }>(x).id.toLowerCase()) }),
  };
}
