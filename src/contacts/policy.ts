/**
 * The contact book's trust policy: who a recipient string names, which keys we hold for them, and
 * what happens when the registry says something else (DESIGN §6).
 *
 *   resolve(to):  onion address ─ parsed (a contact's pin, if any, supplies the encryption key)
 *                 contact alias ─ its pin; if it came from the registry, the fresh record first
 *                 name          ─ registry lookup, verified, pinned as a new contact
 *   a fresh record against the pin (comparePin, src/registry/pin.ts):
 *                 new / updated / rotated ─ (re-)pin it
 *                 same                    ─ keep the pin
 *                 conflict                ─ keep the pin, record the key change, hold queued mail,
 *                                           warn (event contact.keyChange) until the user approves
 *   rotated (a statement signed by the pinned key vouches for the new one): re-pinned without an
 *   alert (event contact.rotated), and the mail waiting for the old identity, held or queued, goes
 *   to the new one (onRotated), whose sessions start with a fresh key agreement
 *   a pending key change whose cause went away (the record is back to the pinned keys, or moved on
 *   with a valid rotation statement): the change is cleared and the held mail released
 *   (onKeyChangeCleared or onRotated; event contact.keyChangeCleared). `recheck()` looks again at
 *   every registry contact with a pending change or queued mail (the node runs it on a timer), so
 *   this does not wait for the next send.
 *   a record that fails verification (BAD_RECORD) or that the endpoints disagree on, for a contact
 *   already pinned: the pinned keys keep working; a lasting warning (status) and an event
 *   (contact.registryProblem) until a later lookup verifies. A first contact has no pin to fall
 *   back on: the error stands.
 *
 * The policy reads and writes the store's contacts and one setting (the registry problems); it
 * holds no state of its own.
 */
import { fromHex, toHex } from '../bytes.js';
import { deadlineSignal, type Clock } from '../clock.js';
import { isOnionAddress, onionAddress, parseOnionAddress } from '../crypto/index.js';
import { OnionpostError } from '../errors.js';
import type { Logger } from '../log.js';
import { RegistryError, comparePin, isValidName, normalizeName, resolveNameOrOwner, type IdentityRegistry, type VerifiedRecord } from '../registry/index.js';
import type { Contact, Store } from '../store/index.js';

export type ContactErrorCode =
  | 'UNKNOWN_RECIPIENT' // not an onion address, a contact, or a registered name
  | 'NO_REGISTRY' // a name was given but the node runs without a registry
  | 'NOT_FOUND' // no such contact, or no such registry name
  | 'NO_KEY_CHANGE'; // approving or rejecting a contact that has no pending key change

export class ContactError extends OnionpostError<ContactErrorCode> {}

/** Whom a message goes to, as resolved for one send. */
export interface Recipient {
  identityKey: Uint8Array;
  onion: string;
  /** The contact's alias, for display (null for a bare onion that is no contact). */
  label: string | null;
  /** The pinned X25519 key; null when only the onion is known (fetched from its bundle at first delivery). */
  encryptionKey: Uint8Array | null;
  /** Why mail to them is held (an unapproved key change), or null. */
  held: string | null;
}

/** A lasting warning for `status`. */
export interface ContactWarning {
  type: string;
  alias?: string;
  message: string;
}

/** What the policy tells the rest of the node. */
export type ContactEvent =
  | { type: 'contact.keyChange'; alias: string; reason: string }
  | { type: 'contact.keyChangeCleared'; alias: string; reason: string }
  /** A contact moved to a new identity key with a valid rotation statement from the pinned one: followed, no alert. */
  | { type: 'contact.rotated'; alias: string; onion: string; previousOnion: string }
  | { type: 'contact.registryProblem'; alias: string; reason: string }
  /** A sender's registry name was verified (views that show names may refresh). */
  | { type: 'peer.named'; identityKey: string; name: string };

/** A pending key change that cleared: where the held mail was addressed, and the contact now. */
export interface ClearedKeyChange {
  contact: Contact;
  /** The pin the held mail was encrypted to. */
  previous: { identityKey: string; encryptionKey: string | null };
}

/** Registry errors that mean "the record cannot be trusted", as opposed to "cannot be read now". */
const UNTRUSTED: ReadonlySet<string> = new Set(['BAD_RECORD', 'ENDPOINTS_DISAGREE']);
/** The setting holding the registry problems, JSON: identity key hex → { reason, seenAt }. */
const PROBLEMS_SETTING = 'contacts.registryProblems';

/** How long a verified sender name is trusted before a new claim is looked up again, ms. */
const NAME_RECHECK_MS = 24 * 60 * 60 * 1000;

export interface ContactPolicyOptions {
  store: Store;
  registry?: IdentityRegistry;
  clock: Clock;
  logger: Logger;
  emit: (ev: ContactEvent) => void;
  /** A key change cleared by itself: release (or re-send) the mail held for it. */
  onKeyChangeCleared?: (c: ClearedKeyChange) => void;
  /**
   * A contact rotated to a new identity key with a valid statement and was re-pinned: move the mail
   * waiting for the old identity (held or queued) to the new one. Called instead of
   * onKeyChangeCleared when a pending change is cleared by a rotation.
   */
  onRotated?: (c: ClearedKeyChange) => void;
  /** Deadline of a registry lookup made for the API (contacts.add, registry.lookup), ms. Default 60 s. */
  lookupTimeoutMs?: number;
}

export class ContactPolicy {
  readonly #o: ContactPolicyOptions;
  readonly #store: Store;
  readonly #log: Logger;
  /** Name verifications in flight, by identity key (one lookup per sender at a time). */
  readonly #verifying = new Map<string, Promise<void>>();

  constructor(o: ContactPolicyOptions) {
    this.#o = o;
    this.#store = o.store;
    this.#log = o.logger;
  }

  /** Resolves `to` (onion, alias or registry name) to a recipient, applying the pin policy to what the registry says. */
  async resolve(to: string, signal: AbortSignal): Promise<Recipient> {
    const input = to.trim();
    // Anything that looks like an onion is parsed as one, so a typo reports the checksum, not "unknown".
    if (isOnionAddress(input) || /\.onion$/i.test(input)) {
      const { onion, identityKey } = parseOnionAddress(input);
      const c = this.#store.getContact(toHex(identityKey));
      return { identityKey, onion, label: c?.alias ?? null, encryptionKey: c?.encryptionKey ? fromHex(c.encryptionKey) : null, held: c?.keyChange?.reason ?? null };
    }
    const contact = this.#store.getContact(input);
    if (contact?.registryName && this.#o.registry) return this.#resolveName(contact.registryName, signal, contact);
    if (contact) return recipientOf(contact);
    if (isValidName(input)) {
      if (!this.#o.registry) throw new ContactError('NO_REGISTRY', `"${input}" is not a contact or an onion address, and this node has no registry configured to look names up`);
      return this.#resolveName(normalizeName(input), signal, null);
    }
    throw new ContactError('UNKNOWN_RECIPIENT', `"${input}" is not an onion address, a contact, or a valid registry name`);
  }

  /** Adds (or refreshes) a contact by onion address or registry name, pinning its keys. */
  async add(alias: string, address: string): Promise<Contact> {
    if (isOnionAddress(address)) {
      const { onion, identityKey } = parseOnionAddress(address);
      return this.#store.upsertContact({ alias, identityKey: toHex(identityKey), onion, source: 'onion' });
    }
    const registry = this.#registry('not an onion address, and this node has no registry to look names up');
    const deadline = deadlineSignal(this.#o.clock, this.#o.lookupTimeoutMs ?? 60_000);
    let rec: VerifiedRecord | null;
    try {
      rec = await registry.resolveName(normalizeName(address), { signal: deadline.signal });
    } finally {
      deadline.clear();
    }
    if (!rec) throw new ContactError('UNKNOWN_RECIPIENT', `no one has registered the name "${address}"`);
    const existing = this.#store.getContact(alias) ?? this.#byRegistryName(rec.name);
    return this.#applyRecord(existing, rec, alias);
  }

  /** A registry name or TRON address, resolved and verified (no pinning). */
  async lookup(nameOrOwner: string): Promise<VerifiedRecord> {
    const rec = await resolveNameOrOwner(this.#registry('this node has no registry configured'), nameOrOwner);
    if (!rec) throw new ContactError('NOT_FOUND', `"${nameOrOwner}" is not registered`);
    return rec;
  }

  /**
   * Pins keys fetched from a peer's own signed bundle (a contact added by onion only, at its first
   * delivery). A contact that already has an encryption key keeps it.
   */
  pinFetchedKeys(peerIdentity: string, keys: { encryptionKey: Uint8Array; bundle?: Uint8Array }): void {
    const contact = this.#store.getContact(peerIdentity);
    if (contact && !contact.encryptionKey) {
      this.#store.upsertContact({ ...contact, encryptionKey: toHex(keys.encryptionKey), pinnedBundle: keys.bundle ?? null, pinnedAt: this.#o.clock.now() });
    }
  }

  /**
   * Accepts a contact's pending key change without a rotation statement (the user checked with
   * them). Returns the re-pinned contact and the identity its held mail was addressed to.
   */
  approveKeyChange(alias: string): { contact: Contact; previousIdentity: string } {
    const c = this.#store.getContact(alias);
    if (!c) throw new ContactError('NOT_FOUND', `no contact "${alias}"`);
    const k = c.keyChange;
    if (!k) throw new ContactError('NO_KEY_CHANGE', `${c.alias} has no pending key change`);
    const contact = this.#store.upsertContact({
      ...c, identityKey: k.identityKey, encryptionKey: k.encryptionKey, onion: k.onion ?? onionAddress(fromHex(k.identityKey)),
      registryVersion: k.registryVersion ?? c.registryVersion, pinnedAt: this.#o.clock.now(), keyChange: null,
    });
    return { contact, previousIdentity: c.identityKey };
  }

  /**
   * Refuses a contact's pending key change: the pinned keys stay, the messages held for them are
   * cancelled (failed, KEY_REJECTED), and the same key at the same record version no longer alerts
   * or holds (mail goes on to the pinned key). A later, different change alerts again.
   */
  rejectKeyChange(alias: string): { contact: Contact; cancelled: number } {
    const c = this.#store.getContact(alias);
    if (!c) throw new ContactError('NOT_FOUND', `no contact "${alias}"`);
    const k = c.keyChange;
    if (!k) throw new ContactError('NO_KEY_CHANGE', `${c.alias} has no pending key change`);
    let cancelled = 0;
    this.#store.batch(() => {
      this.#store.setRejectedKey(c.identityKey, { identityKey: k.identityKey, registryVersion: k.registryVersion ?? null });
      this.#store.setKeyChange(c.alias, null);
      // Each page leaves 'held', so the loop ends when none is left.
      for (let held = this.#held(c.identityKey); held.length > 0; held = this.#held(c.identityKey)) {
        for (const id of held) {
          this.#store.transition(id, 'failed', { from: ['held'], reason: `cancelled: you rejected ${c.alias}'s new key`, errorCode: 'KEY_REJECTED' });
          cancelled++;
        }
      }
    });
    this.#log.info({ alias: c.alias, cancelled }, 'key change rejected; pinned keys kept');
    return { contact: this.#store.getContact(c.alias)!, cancelled };
  }

  #held(identity: string): string[] {
    return this.#store.listMessages({ direction: 'out', state: 'held', peer: identity, limit: 500 }).map((m) => m.id);
  }

  /**
   * A sender claimed a registry name (HELLO `name=`). It is believed only if a forward lookup of
   * that name, verified as any lookup is, returns the sender's identity key; then it is stored as
   * the sender's name. Runs in the background; failures are logged, never thrown.
   */
  verifyClaimedName(identityKey: string, claimed: string): Promise<void> {
    const registry = this.#o.registry;
    if (!registry || !isValidName(claimed)) return Promise.resolve();
    const name = normalizeName(claimed);
    const known = this.#store.getPeerName(identityKey);
    if (known && known.name === name && this.#o.clock.now() - known.verifiedAt < NAME_RECHECK_MS) return Promise.resolve();
    const pending = this.#verifying.get(identityKey);
    if (pending) return pending;
    const p = (async () => {
      const deadline = deadlineSignal(this.#o.clock, this.#o.lookupTimeoutMs ?? 60_000);
      try {
        const rec = await registry.resolveName(name, { signal: deadline.signal });
        if (rec && toHex(rec.identityKey) === identityKey) {
          this.#store.setPeerName(identityKey, rec.name, rec.owner);
          this.#o.emit({ type: 'peer.named', identityKey, name: rec.name });
        } else {
          this.#log.info({ name }, 'a sender claimed a registry name that is not theirs; ignored');
        }
      } catch (err) {
        this.#log.debug({ err: String(err) }, 'could not verify a sender name');
      } finally {
        deadline.clear();
        this.#verifying.delete(identityKey);
      }
    })();
    this.#verifying.set(identityKey, p);
    return p;
  }

  /** Lasting warnings for `status`: unapproved key changes, and registry records that did not verify. */
  warnings(): ContactWarning[] {
    const contacts = this.#store.listContacts();
    const problems = this.#problems();
    return [
      ...contacts.filter((c) => c.keyChange).map((c) => ({
        type: 'contact.keyChange', alias: c.alias, message: `${c.alias}'s keys changed (${c.keyChange!.reason}); messages to them are held until you approve`,
      })),
      ...contacts.filter((c) => problems[c.identityKey]).map((c) => ({
        type: 'contact.registryProblem', alias: c.alias,
        message: `${c.alias}'s registry record cannot be trusted (${problems[c.identityKey]!.reason}); messages to them use the keys pinned earlier`,
      })),
    ];
  }

  /**
   * Looks up again every registry contact with a pending key change or with mail queued for them,
   * so mail held for a change that went away is released, and mail queued for a contact who
   * rotated to a new key follows them, without waiting for the next send. Errors are logged per contact.
   */
  async recheck(signal: AbortSignal): Promise<void> {
    if (!this.#o.registry) return;
    for (const c of this.#store.listContacts()) {
      if (signal.aborted) return;
      if (!c.registryName) continue;
      if (!c.keyChange && this.#store.listMessages({ direction: 'out', state: 'queued', peer: c.identityKey, limit: 1 }).length === 0) continue;
      try {
        await this.#resolveName(c.registryName, signal, c, true);
      } catch (err) {
        this.#log.debug({ alias: c.alias, err: err instanceof Error ? err.message : String(err) }, 'key-change recheck failed');
      }
    }
  }

  #problems(): Record<string, { reason: string; seenAt: number }> {
    const raw = this.#store.getSetting(PROBLEMS_SETTING);
    return raw ? (JSON.parse(raw) as Record<string, { reason: string; seenAt: number }>) : {};
  }

  #setProblem(c: Contact, reason: string | null): void {
    const problems = this.#problems();
    const had = problems[c.identityKey];
    if (reason === null) {
      if (!had) return;
      delete problems[c.identityKey];
      this.#log.info({ alias: c.alias }, 'contact registry record verifies again');
    } else {
      if (had?.reason === reason) return;
      problems[c.identityKey] = { reason, seenAt: this.#o.clock.now() };
      this.#log.warn({ alias: c.alias, reason }, 'contact registry record cannot be trusted: using the pinned keys');
      this.#o.emit({ type: 'contact.registryProblem', alias: c.alias, reason });
    }
    this.#store.setSetting(PROBLEMS_SETTING, Object.keys(problems).length ? JSON.stringify(problems) : null);
  }

  #registry(why: string): IdentityRegistry {
    if (!this.#o.registry) throw new ContactError('NO_REGISTRY', why);
    return this.#o.registry;
  }

  #byRegistryName(name: string): Contact | null {
    return this.#store.listContacts().find((c) => c.registryName === name) ?? null;
  }

  /** Looks a name up, verifies it, and applies the pinning policy to the contact book. */
  async #resolveName(name: string, signal: AbortSignal, known: Contact | null, fresh = false): Promise<Recipient> {
    let rec: VerifiedRecord | null;
    try {
      rec = await this.#o.registry!.resolveName(name, { signal, fresh });
    } catch (err) {
      // A record we cannot trust must not stop mail to someone whose keys we pinned from a good one.
      if (!(err instanceof RegistryError) || !UNTRUSTED.has(err.code)) throw err;
      const pinned = known ?? this.#store.getContact(name) ?? this.#byRegistryName(name);
      if (!pinned?.encryptionKey) throw err;
      this.#setProblem(pinned, `${err.message} [${err.code}]`);
      return recipientOf(pinned);
    }
    if (!rec) {
      if (known) return recipientOf(known);
      throw new ContactError('UNKNOWN_RECIPIENT', `no one has registered the name "${name}"`);
    }
    const contact = known ?? this.#store.getContact(name) ?? this.#byRegistryName(rec.name);
    if (contact) this.#setProblem(contact, null);
    return recipientOf(this.#applyRecord(contact, rec));
  }

  /** A pending key change went away by itself: say so and let the held mail go. */
  #cleared(before: Contact, now: Contact, reason: string): Contact {
    this.#log.info({ alias: now.alias }, `key change cleared: ${reason}; releasing held mail`);
    this.#o.emit({ type: 'contact.keyChangeCleared', alias: now.alias, reason });
    this.#o.onKeyChangeCleared?.({ contact: now, previous: { identityKey: before.identityKey, encryptionKey: before.encryptionKey } });
    return now;
  }

  #applyRecord(contact: Contact | null, rec: VerifiedRecord, aliasForNew = rec.name): Contact {
    const now = this.#o.clock.now();
    // A verified forward lookup: the record's key is known by this name (what views show).
    this.#store.setPeerName(toHex(rec.identityKey), rec.name, rec.owner);
    const pin = contact?.encryptionKey ? { identityKey: fromHex(contact.identityKey), encryptionKey: fromHex(contact.encryptionKey), version: contact.registryVersion ?? 0 } : null;
    const verdict = comparePin(pin, rec);
    const fresh = {
      identityKey: toHex(rec.identityKey), encryptionKey: toHex(rec.encryptionKey), onion: rec.onion, source: 'registry' as const,
      registryName: rec.name, registryOwner: rec.owner, registryVersion: rec.version, pinnedAt: now, keyChange: null,
    };
    switch (verdict.kind) {
      case 'new':
        return this.#store.upsertContact({ alias: contact?.alias ?? aliasForNew, ...fresh });
      case 'same':
        if (contact!.keyChange) {
          this.#store.setKeyChange(contact!.alias, null);
          return this.#cleared(contact!, this.#store.getContact(contact!.alias)!, 'the registry record is back to the pinned keys');
        }
        return contact!;
      case 'updated': {
        const updated = this.#store.upsertContact({ ...contact!, ...fresh });
        if (!contact!.keyChange) return updated;
        return this.#cleared(contact!, updated, 'the registry record is back to the pinned identity');
      }
      case 'rotated': {
        const before = contact!;
        const updated = this.#store.upsertContact({ ...before, ...fresh });
        this.#log.info({ alias: before.alias, onion: rec.onion }, 'contact rotated to a new identity key with a statement signed by the pinned key: followed');
        this.#o.emit({ type: 'contact.rotated', alias: updated.alias, onion: rec.onion, previousOnion: before.onion });
        if (before.keyChange) this.#o.emit({ type: 'contact.keyChangeCleared', alias: updated.alias, reason: 'the registry record moved on with a valid rotation statement' });
        this.#o.onRotated?.({ contact: updated, previous: { identityKey: before.identityKey, encryptionKey: before.encryptionKey } });
        return updated;
      }
      case 'conflict': {
        const c = contact!;
        const rejected = this.#store.getRejectedKey(c.identityKey);
        if (rejected && rejected.identityKey === fresh.identityKey && rejected.registryVersion === rec.version) return c;
        if (!c.keyChange || c.keyChange.identityKey !== fresh.identityKey || c.keyChange.registryVersion !== rec.version) {
          this.#store.setKeyChange(c.alias, { identityKey: fresh.identityKey, encryptionKey: fresh.encryptionKey, onion: rec.onion, seenAt: now, reason: verdict.reason, registryVersion: rec.version });
          this.#store.holdForPeer(c.identityKey, `key change: ${verdict.reason}`);
          this.#log.warn({ alias: c.alias }, 'contact key changed without a valid rotation statement: messages held');
          this.#o.emit({ type: 'contact.keyChange', alias: c.alias, reason: verdict.reason });
        }
        return this.#store.getContact(c.alias)!;
      }
    }
  }
}

/** The recipient a contact's pin describes. */
export function recipientOf(c: Contact): Recipient {
  return { identityKey: fromHex(c.identityKey), onion: c.onion, label: c.alias, encryptionKey: c.encryptionKey ? fromHex(c.encryptionKey) : null, held: c.keyChange?.reason ?? null };
}
