/**
 * The API's method handlers and the views they return (the shapes the CLI and the web UI read).
 * They take the node's collaborators as explicit dependencies; the methods' parameters are
 * validated against methods.ts before a handler runs.
 */
import { toHex } from '../bytes.js';
import { OnionpostError } from '../errors.js';
import type { VerifiedRecord } from '../registry/index.js';
import type { Contact } from '../store/index.js';
import { createMailHandlers, type MailDeps } from './mail-handlers.js';
import type { Handler } from './server.js';

export { summary } from './mail-handlers.js';

export type HandlerErrorCode =
  | 'NOT_FOUND'; // no contact with that alias

export class HandlerError extends OnionpostError<HandlerErrorCode> {}

/** What the handlers need from the node. */
export interface HandlerDeps extends MailDeps {
  /** Our onion address and public keys. */
  address(): { onion: string; identityKey: string; encryptionKey: string };
  status(): unknown;
  addContact(alias: string, address: string): Promise<Contact>;
  approveKeyChange(alias: string): Contact;
  lookup(nameOrOwner: string): Promise<VerifiedRecord>;
  /** Where a mail client connects to the mail bridge; throws when it is off. */
  bridgeSettings(): unknown;
  /** Refuses a contact's pending key change and cancels what was held for it. */
  rejectKeyChange(alias: string): { contact: Contact; cancelled: number };
  /** The safety number of our identity key and `identityKey` (hex). */
  safetyNumber(identityKey: string): { digits: string; groups: string[] };
  /** The provider directory, joined with what the node knows of each provider (views as in provider-methods.ts). */
  providers: {
    list(q: { offset?: number; limit?: number; includeLeaving?: boolean }): Promise<unknown>;
    /** By TRON owner address or onion. */
    show(provider: string): Promise<unknown>;
  };
  /** The mailbox providers we subscribed at (views as in mailbox-methods.ts). */
  mailboxes: {
    add(onion: string): Promise<unknown>;
    list(): unknown[];
    remove(onion: string): unknown;
    /** Providers the user names as replacements for ours that go bad. */
    spares(): string[];
    addSpare(onion: string): string[];
    removeSpare(onion: string): string[];
    /** Trust lists the user accepted, and accepting / forgetting one (signer: identity key or contact alias). */
    trustLists(): unknown[];
    addTrustList(text: string, signer: string): unknown;
    removeTrustList(name: string): void;
    /** The directory policy (node/mailbox-policy.ts MailboxPolicy), and changing the fields given. */
    policy(): unknown;
    setPolicy(patch: Record<string, unknown>): unknown;
    /** Measured reputations (all, or one with its recent events). */
    scores(onion?: string): unknown[];
    /** Settle, judge and replace now. */
    review(): Promise<unknown>;
  };
}

export function contactView(c: Contact) {
  return {
    alias: c.alias, onion: c.onion, identityKey: c.identityKey, encryptionKey: c.encryptionKey, source: c.source,
    registryName: c.registryName, registryVersion: c.registryVersion, pinnedAt: c.pinnedAt, keyChange: c.keyChange,
  };
}

export function recordView(rec: VerifiedRecord) {
  return {
    // A hidden user's identity onion is never online: the view lists no onion for it, only its providers.
    name: rec.name, owner: rec.owner, onion: rec.hidden ? null : rec.onion, ...(rec.hidden ? { hidden: true } : {}),
    identityKey: toHex(rec.identityKey), encryptionKey: toHex(rec.encryptionKey), mailboxes: rec.mailboxes, version: rec.version, contract: rec.contract, rotation: rec.rotation ? { from: toHex(rec.rotation.oldIdentity) } : null,
  };
}


/** The handler of every method in API_METHODS except the WebSocket-only ones. */
export function createHandlers(d: HandlerDeps): Record<string, Handler> {
  const p = <T>(x: Record<string, unknown>) => x as T;
  const contact = (alias: string): Contact => {
    const c = d.store().getContact(alias);
    if (!c) throw new HandlerError('NOT_FOUND', `no contact "${alias}"`);
    return c;
  };
  return {
    'node.address': () => d.address(),
    'node.status': () => d.status(),
    ...createMailHandlers(d),
    'bridge.settings': () => d.bridgeSettings(),
    'contacts.list': () => d.store().listContacts().map(contactView),
    'contacts.add': async (x) => {
      const q = p<{ alias: string; address: string }>(x);
      return contactView(await d.addContact(q.alias, q.address));
    },
    'contacts.remove': (x) => ({ removed: d.store().removeContact(p<{ alias: string }>(x).alias) }),
    'contacts.approveKeyChange': (x) => contactView(d.approveKeyChange(p<{ alias: string }>(x).alias)),
    'contacts.rejectKeyChange': (x) => {
      const r = d.rejectKeyChange(p<{ alias: string }>(x).alias);
      return { ...contactView(r.contact), cancelled: r.cancelled };
    },
    'contacts.get': (x) => contactView(contact(p<{ alias: string }>(x).alias)),
    'contacts.safetyNumber': (x) => {
      const c = contact(p<{ alias: string }>(x).alias);
      return { alias: c.alias, ...d.safetyNumber(c.identityKey) };
    },
    'mailboxes.add': (x) => d.mailboxes.add(p<{ onion: string }>(x).onion),
    'mailboxes.list': () => d.mailboxes.list(),
    'mailboxes.remove': (x) => d.mailboxes.remove(p<{ onion: string }>(x).onion),
    'mailboxes.spares': () => d.mailboxes.spares(),
    'mailboxes.addSpare': (x) => d.mailboxes.addSpare(p<{ onion: string }>(x).onion),
    'mailboxes.removeSpare': (x) => d.mailboxes.removeSpare(p<{ onion: string }>(x).onion),
    'mailboxes.trustLists': () => d.mailboxes.trustLists(),
    'mailboxes.addTrustList': (x) => {
      const q = p<{ text: string; signer: string }>(x);
      return d.mailboxes.addTrustList(q.text, q.signer);
    },
    'mailboxes.removeTrustList': (x) => {
      d.mailboxes.removeTrustList(p<{ name: string }>(x).name);
      return { removed: true };
    },
    'mailboxes.policy': () => d.mailboxes.policy(),
    'mailboxes.setPolicy': (x) => d.mailboxes.setPolicy(p<Record<string, unknown>>(x)),
    'mailboxes.scores': (x) => d.mailboxes.scores(p<{ onion?: string }>(x).onion),
    'mailboxes.review': () => d.mailboxes.review(),
    'providers.list': (x) => d.providers.list(p<{ offset?: number; limit?: number; includeLeaving?: boolean }>(x)),
    'providers.show': (x) => d.providers.show(p<{ provider: string }>(x).provider),
    'registry.lookup': async (x) => recordView(await d.lookup(p<{ name: string }>(x).name)),
  };
}
