/**
 * The Envelopes seam over sessions (PROTOCOL.md §2–§12): our prekeys and bundle, agreement and
 * ratchet per peer, the in-memory tag window, receipt MACs. All state is in the node's store
 * (src/store/sessions.ts); each method that changes it runs inside the caller's transaction (see
 * envelopes.ts), so a session's state moves exactly with the message it encrypted or opened.
 *
 *   prekeys:  one signed X25519 and one ML-KEM-768 prekey, rotated every signedPrekeyRotationMs
 *             (the old ones kept maxTtl + maxClockSkew for mail still on its way); a pool of
 *             one-time prekeys, one handed out per BUNDLE answer, refilled below its low mark
 *   sending:  current session? encrypt when queued : queued unsealed → BUNDLE → agree (INIT first)
 *   receiving: seen key? stored receipt : SESSION tag → TagIndex (O(1)) → decrypt │ INIT → respond
 *
 * The tag window is rebuilt from the store on construction and kept in step after each commit
 * (`after`), never before: a rolled-back transaction leaves it as it was.
 */
import { bytesEqual, fromHex, toHex } from '../bytes.js';
import type { Clock, TimerHandle } from '../clock.js';
import { onionAddress, sha256, type Identity, type OnionAddress, type RandomBytes } from '../crypto/index.js';
import { OnionpostError, describeError } from '../errors.js';
import type { Limits } from '../limits.js';
import type { Logger } from '../log.js';
import { RejectCode } from '../protocol/index.js';
import {
  SessionError, TagIndex, decodeBundleAnswer, decodeState, decrypt, encodeBundleAnswer, encodeState, encrypt, envelopeKind, initiate,
  newOneTimePrekeys, newPqPrekey, newSignedPrekey, peerIdentity, receiptMac, respond, seenKey, sessionTag, signBundle, verifyBundle,
  verifyReceiptMac, type BundleV2, type PrekeyLookup, type SessionMessage, type SessionState,
} from '../session/index.js';
import { kemKeyPair } from '../session/primitives.js';
import type { OutgoingKey, SessionStore, Store, StoredMessage } from '../store/index.js';
import type { Draft, EnvelopeReject, Envelopes, Opened, PrepareBatch, Prepared, Sendability, UnknownSessionVerdict } from './envelopes.js';

/** A PrepareBatch: the states of the sessions the batch encrypted on, written by finish(). */
interface SessionBatch extends PrepareBatch {
  states: Map<string, { id: string; state: SessionState }>;
}

export interface SessionEnvelopesOptions {
  identity: Identity;
  store: Store;
  clock: Clock;
  random: RandomBytes;
  limits: Limits;
  logger: Logger;
  /** How often housekeeping runs (prune, rotate, refill), ms. Default 1 h. */
  housekeepingMs?: number;
  /** The mailbox providers our bundle lists (issue 11), asked each time the bundle is used. Default none. */
  mailboxes?: () => readonly OnionAddress[];
}

/** Our bundle is signed again after this long (its own lifetime is 90 days), ms. */
const BUNDLE_RESIGN_MS = 24 * 3600_000;

/**
 * Session errors that mean "no session here for that envelope": the sender resets (PROTOCOL.md
 * §7.4, §11). Besides an INIT naming prekeys or a bundle we cannot use, an envelope whose header or
 * body does not open with the keys we hold for it: over an onion connection that is not tampering
 * but two states that diverged (one side restored a backup, or lost its state).
 */
const UNKNOWN: ReadonlySet<string> = new Set(['PREKEY_UNKNOWN', 'BAD_BUNDLE', 'BUNDLE_EXPIRED', 'DECRYPT_FAILED', 'BAD_HEADER', 'BAD_TAG', 'TOO_MANY_SKIPPED']);

/** The REJECT a SessionError becomes on the wire (PROTOCOL.md §11). */
export function rejectForSessionError(err: SessionError): EnvelopeReject {
  if (UNKNOWN.has(err.code)) return { code: RejectCode.UNKNOWN_SESSION, retryable: false, reason: err.message };
  switch (err.code) {
    case 'UNSUPPORTED_VERSION': return { code: RejectCode.UNSUPPORTED_VERSION, retryable: false, reason: err.message };
    case 'EXPIRED': return { code: RejectCode.EXPIRED, retryable: false, reason: err.message };
    case 'CLOCK_SKEW': return { code: RejectCode.CLOCK_SKEW, retryable: true, reason: err.message };
    case 'TOO_LARGE': return { code: RejectCode.TOO_LARGE, retryable: false, reason: err.message };
    case 'BAD_STATE': return { code: RejectCode.INTERNAL, retryable: true, reason: 'internal error' };
    default: return { code: RejectCode.DECRYPT_FAILED, retryable: false, reason: err.message };
  }
}

/** Our prekeys as `respond` looks them up: current and still-kept ones, from the store. */
export function storePrekeyLookup(ss: SessionStore): PrekeyLookup {
  return {
    signedPrekey: (id) => ss.getSignedPrekey('x25519', id) ?? undefined,
    pqPrekey: (id) => {
      const k = ss.getSignedPrekey('mlkem768', id);
      return k ? { id: k.id, seed: k.secret, public: k.public, secretKey: kemKeyPair(k.secret).secretKey } : undefined;
    },
    oneTimePrekey: (id) => ss.getOneTimePrekey(id) ?? undefined,
  };
}

/** The inner message of a draft. */
export function sessionMessage(d: Draft): SessionMessage {
  return {
    kind: d.kind, id: d.id, createdAt: d.createdAt, expiresAt: d.expiresAt, threadId: d.threadId ?? null, inReplyTo: d.inReplyTo ?? null,
    subject: d.subject, body: d.body, attachments: d.attachments ? [...d.attachments] : [],
  };
}

export class SessionEnvelopes implements Envelopes {
  readonly index: TagIndex;
  readonly #o: SessionEnvelopesOptions;
  readonly #store: Store;
  readonly #log: Logger;
  #bundle: { bytes: BundleV2; spk: number; pq: number; at: number; mailboxes: string } | undefined;
  /**
   * Per session we started or send on: the highest counter the peer has receipted (-1: none yet).
   * The peer's tag window reaches that + tagWindow, so nothing beyond is sent (PROTOCOL.md §8.2).
   * Memory only: on first use after a start it is read back from the receipt keys still stored.
   */
  readonly #acked = new Map<string, number>();
  /**
   * Read-through caches of what every attempt and receipt asks (a queued message's session, counter
   * and receipt key; which sessions are confirmed), so the hot path reads them once. An entry is
   * dropped when the message is encrypted again; a session once confirmed stays confirmed.
   */
  readonly #keys = new Map<string, OutgoingKey>();
  readonly #confirmed = new Set<string>();
  #timer: TimerHandle | undefined;
  #started = false;
  #closed = false;

  constructor(o: SessionEnvelopesOptions) {
    this.#o = o;
    this.#store = o.store;
    this.#log = o.logger;
    this.index = new TagIndex({ window: o.limits.tagWindow });
    this.#ensurePrekeys();
    for (const s of this.#store.sessions.listSessions()) {
      this.index.add(s.id, decodeState(s.state), this.#store.sessions.listSkippedKeys(s.id));
    }
  }

  // ── prekeys and bundle ─────────────────────────────────────────────────────

  /** Signed prekeys present and not older than the rotation period; the one-time pool above its low mark. */
  #ensurePrekeys(): void {
    const ss = this.#store.sessions;
    const l = this.#o.limits;
    const now = this.#o.clock.now();
    const keep = l.maxTtlMs + l.maxClockSkewMs;
    this.#store.batch(() => {
      const spk = ss.currentSignedPrekey('x25519');
      const pq = ss.currentSignedPrekey('mlkem768');
      const due = (k: { createdAt: number } | null) => !k || now - k.createdAt >= l.signedPrekeyRotationMs;
      if (due(spk) || due(pq)) {
        ss.addSignedPrekey('x25519', newSignedPrekey(ss.nextPrekeyId('x25519'), this.#o.random), now, keep);
        const p = newPqPrekey(ss.nextPrekeyId('mlkem768'), this.#o.random);
        ss.addSignedPrekey('mlkem768', { id: p.id, secret: p.seed, public: p.public }, now, keep);
        if (spk) this.#log.info('signed prekeys rotated');
      }
      this.#refill(now);
    });
  }

  /** Fills the one-time pool up to oneTimePrekeyPool when it is below its low mark (or was never filled). */
  #refill(now: number, force = false): void {
    const ss = this.#store.sessions;
    const { oneTimePrekeyPool: pool, oneTimePrekeyRefillBelow: low } = this.#o.limits;
    const { available } = ss.oneTimePrekeyCounts();
    const first = ss.nextPrekeyId('one-time') === 1;
    if ((available < low || first || force) && pool > available) {
      ss.addOneTimePrekeys(newOneTimePrekeys(ss.nextPrekeyId('one-time'), pool - available, this.#o.random), now);
    }
  }

  /** Our signed bundle, re-signed when a signed prekey or our providers changed, or once a day. */
  #ownBundle(): BundleV2 {
    const ss = this.#store.sessions;
    const spk = ss.currentSignedPrekey('x25519')!;
    const pq = ss.currentSignedPrekey('mlkem768')!;
    const now = this.#o.clock.now();
    const mailboxes = [...(this.#o.mailboxes?.() ?? [])];
    const listed = mailboxes.join(',');
    const b = this.#bundle;
    if (b && b.spk === spk.id && b.pq === pq.id && b.mailboxes === listed && now - b.at < BUNDLE_RESIGN_MS) return b.bytes;
    const bytes = signBundle(this.#o.identity, { signedPrekey: spk, pqPrekey: pq, now, mailboxes });
    this.#bundle = { bytes, spk: spk.id, pq: pq.id, at: now, mailboxes: listed };
    return bytes;
  }

  bundleAnswer(): Uint8Array {
    const now = this.#o.clock.now();
    const oneTimePrekey = this.#store.batch(() => {
      const k = this.#store.sessions.handOutOneTimePrekey(now);
      this.#refill(now);
      return k;
    });
    return encodeBundleAnswer({ bundle: this.#ownBundle(), oneTimePrekey });
  }

  handOutPrekeys(n: number): { id: number; public: Uint8Array }[] {
    const now = this.#o.clock.now();
    return this.#store.batch(() => {
      const out: { id: number; public: Uint8Array }[] = [];
      for (let i = 0; i < n; i++) {
        const k = this.#store.sessions.handOutOneTimePrekey(now) ?? (this.#refill(now, true), this.#store.sessions.handOutOneTimePrekey(now));
        if (!k) break;
        out.push(k);
      }
      this.#refill(now);
      return out;
    });
  }

  ownBundleAnswer(): Uint8Array {
    return encodeBundleAnswer({ bundle: this.#ownBundle(), oneTimePrekey: null });
  }

  learnBundle(answer: Uint8Array): boolean {
    try {
      const b = decodeBundleAnswer(answer).bundle;
      const peer = toHex(b.identityKey);
      // Only for someone we talk to: a stranger's bundle would be stored for nothing.
      if (!this.#store.sessions.currentSession(peer)) return false;
      verifyBundle(b, { now: this.#o.clock.now(), maxClockSkewMs: this.#o.limits.maxClockSkewMs, expectedIdentity: b.identityKey });
      this.#store.deposits.setPeerMailboxes(peer, b.mailboxes, b.createdAt, this.#o.clock.now());
      return true;
    } catch (err) {
      if (err instanceof SessionError || err instanceof OnionpostError) return false;
      throw err;
    }
  }

  checkBundleAnswer(answer: Uint8Array, identityKey: Uint8Array): void {
    const a = decodeBundleAnswer(answer);
    verifyBundle(a.bundle, { now: this.#o.clock.now(), maxClockSkewMs: this.#o.limits.maxClockSkewMs, expectedIdentity: identityKey });
  }

  // ── sending ────────────────────────────────────────────────────────────────

  prepare(peer: Uint8Array, draft: Draft, batch?: PrepareBatch): (Prepared & { recorded(): void }) | null {
    const ss = this.#store.sessions;
    const peerHex = toHex(peer);
    const now = this.#o.clock.now();
    // In a batch, a session's state is read once and written once (by finish()), in between kept
    // here: the messages of one transaction chain on it.
    let current = batch ? (batch as SessionBatch).states.get(peerHex) : undefined;
    if (!current) {
      const stored = ss.currentSession(peerHex);
      if (!stored) return null;
      current = { id: stored.id, state: decodeState(stored.state) };
    }
    const e = encrypt(current.state, sessionMessage(draft), { random: this.#o.random });
    const sessionId = current.id;
    if (batch) (batch as SessionBatch).states.set(peerHex, { id: sessionId, state: e.state });
    else ss.updateState(sessionId, encodeState(e.state), now);
    const messageId = toHex(draft.id);
    return {
      envelope: e.envelope, envelopeHash: e.envelopeHash,
      recorded: () => ss.recordOutgoing({ messageId, sessionId, k: e.k, receiptKey: e.receiptKey }),
    };
  }

  batch(): PrepareBatch {
    const ss = this.#store.sessions;
    const states = new Map<string, { id: string; state: SessionState }>();
    const b: SessionBatch = {
      states,
      finish: () => {
        const now = this.#o.clock.now();
        for (const { id, state } of states.values()) ss.updateState(id, encodeState(state), now);
        states.clear();
      },
    };
    return b;
  }

  hasSession(peer: Uint8Array): boolean {
    return this.#store.sessions.currentSession(toHex(peer)) !== null;
  }

  sealQueued(peer: Uint8Array): number {
    const peerHex = toHex(peer);
    const ss = this.#store.sessions;
    return this.#store.batch(() => {
      const current = ss.currentSession(peerHex);
      if (!current) return 0;
      const ids = ss.unsealedOutgoing(peerHex);
      if (ids.length === 0) return 0;
      let state = decodeState(current.state);
      for (const id of ids) state = this.#sealOne(id, current.id, (m) => encrypt(state, m, { random: this.#o.random }));
      ss.updateState(current.id, encodeState(state), this.#o.clock.now());
      return ids.length;
    });
  }

  agree(peer: Uint8Array, answerBytes: Uint8Array): { encryptionKey: Uint8Array; bundle: Uint8Array; sealed: number } {
    const peerHex = toHex(peer);
    const ss = this.#store.sessions;
    const answer = decodeBundleAnswer(answerBytes);
    const now = this.#o.clock.now();
    const result = this.#store.batch(() => {
      this.#store.deposits.setPeerMailboxes(peerHex, answer.bundle.mailboxes, answer.bundle.createdAt, now);
      const ids = ss.unsealedOutgoing(peerHex);
      if (ids.length === 0) return null;
      let sessionId = '';
      let state: SessionState | undefined;
      for (const id of ids) {
        if (!state) {
          state = this.#sealOne(id, null, (m) => {
            const r = initiate({
              self: this.#o.identity, selfBundle: this.#ownBundle(), peer: answer, expectedPeer: peer, message: m, now,
              maxClockSkewMs: this.#o.limits.maxClockSkewMs, random: this.#o.random,
            });
            sessionId = toHex(r.state.id);
            ss.insertSession({ id: sessionId, peerIdentity: peerHex, role: 'initiator', state: encodeState(r.state), confirmed: false, now });
            return { ...r, sessionId };
          });
        } else {
          const s: SessionState = state;
          state = this.#sealOne(id, sessionId, (m) => encrypt(s, m, { random: this.#o.random }));
        }
      }
      ss.updateState(sessionId, encodeState(state!), now);
      return { sessionId, state: state!, sealed: ids.length };
    });
    if (result) {
      this.index.add(result.sessionId, result.state);
      this.#log.info({ peer: onionAddress(peer), messages: result.sealed }, 'new session agreed');
    }
    return { encryptionKey: answer.bundle.encryptionKey, bundle: answer.bundle.bytes, sealed: result?.sealed ?? 0 };
  }

  /** Encrypts one stored message with `enc` and stores its new envelope and receipt key. Returns the new state. */
  #sealOne(
    id: string, sessionId: string | null,
    enc: (m: SessionMessage) => { state: SessionState; envelope: Uint8Array; envelopeHash: Uint8Array; receiptKey: Uint8Array; k: number; sessionId?: string },
  ): SessionState {
    const row = this.#store.getMessage(id)!;
    const e = enc(sessionMessage(this.#draftOf(row)));
    this.#store.sessions.replaceEnvelope(id, e.envelope, e.envelopeHash);
    this.#store.sessions.recordOutgoing({ messageId: id, sessionId: e.sessionId ?? sessionId!, k: e.k, receiptKey: e.receiptKey });
    this.#keys.delete(id);
    return e.state;
  }

  #draftOf(m: StoredMessage): Draft {
    return {
      id: fromHex(m.id), kind: m.kind, subject: m.subject ?? '', body: m.body, createdAt: m.createdAt, expiresAt: m.expiresAt,
      ...(m.threadId !== m.id ? { threadId: fromHex(m.threadId) } : {}), ...(m.inReplyTo ? { inReplyTo: fromHex(m.inReplyTo) } : {}),
      ...(m.attachmentCount > 0 ? { attachments: this.#store.getAttachments(m.id) } : {}),
    };
  }

  sendable(messageId: string): Sendability {
    const ss = this.#store.sessions;
    const out = this.#outgoingKey(messageId);
    if (!out || out.k === 0) return { send: true };
    if (out.k > this.#ackedIn(out.sessionId) + this.#o.limits.tagWindow) return { send: false, init: null };
    if (this.#confirmed.has(out.sessionId)) return { send: true };
    const s = ss.getSession(out.sessionId);
    if (s?.confirmed) this.#confirmed.add(s.id);
    if (!s || s.confirmed || s.role !== 'initiator') return { send: true };
    const init = ss.initMessage(s.id);
    if (init && (init.state === 'queued' || init.state === 'sending')) return { send: false, init: init.messageId };
    if (init?.state === 'delivered') {
      ss.confirm(s.id);
      this.#confirmed.add(s.id);
      return { send: true };
    }
    // The INIT will never be receipted (failed, expired, deleted): nothing the peer can read follows
    // from this session, so its messages go into a new one.
    this.#reset(s.id);
    this.#log.info('session dropped: its INIT was never delivered');
    return { send: false, init: null };
  }

  #outgoingKey(messageId: string): OutgoingKey | null {
    const hit = this.#keys.get(messageId);
    if (hit) return hit;
    const out = this.#store.sessions.getOutgoing(messageId);
    if (out) {
      if (this.#keys.size >= 65_536) this.#keys.clear();
      this.#keys.set(messageId, out);
    }
    return out;
  }

  /** A reset (one transaction): the session stops sending and its undelivered messages lose their envelopes. */
  #reset(sessionId: string): number {
    const ids = this.#store.batch(() => this.#store.sessions.resetSession(sessionId));
    for (const id of ids) this.#keys.delete(id);
    return ids.length;
  }

  /** The highest counter of the session the peer receipted (see #acked). */
  #ackedIn(sessionId: string): number {
    let acked = this.#acked.get(sessionId);
    if (acked === undefined) {
      const c = this.#store.sessions.counters(sessionId);
      // After a restart the receipt keys of delivered messages may already be pruned: then the
      // lowest pending counter tells how far the peer got (everything before it was receipted or
      // given up).
      acked = c.highestDelivered ?? (c.lowestPending !== null ? c.lowestPending - 1 : -1);
      this.#acked.set(sessionId, acked);
    }
    return acked;
  }

  unknownSession(messageId: string): UnknownSessionVerdict {
    const ss = this.#store.sessions;
    const out = this.#outgoingKey(messageId);
    const s = out ? ss.getSession(out.sessionId) : null;
    if (!out || !s) {
      // Bytes we hold no session record for: encrypt them again.
      this.#store.batch(() => {
        this.#store.sessions.replaceEnvelope(messageId, new Uint8Array(0), new Uint8Array(0));
      });
      this.#keys.delete(messageId);
      return { action: 'reseal', reset: null };
    }
    if (out.k > 0 && s.role === 'initiator' && !s.confirmed && s.current) return { action: 'wait' };
    // Beyond the peer's tag window (sent out of order): not a lost session; it fits once the
    // messages before it are receipted.
    if (out.k > this.#ackedIn(s.id) + this.#o.limits.tagWindow) return { action: 'wait' };
    return { action: 'reseal', reset: { sessionId: s.id, messages: this.#reset(s.id) } };
  }

  checkReceipt(messageId: string, envelopeHash: Uint8Array, mac: Uint8Array): { valid: boolean; confirmed: boolean } {
    const ss = this.#store.sessions;
    const out = this.#outgoingKey(messageId);
    if (!out || envelopeHash.length === 0 || !verifyReceiptMac(out.receiptKey, fromHex(messageId), envelopeHash, mac)) return { valid: false, confirmed: false };
    this.#keys.delete(messageId);
    if (out.k > this.#ackedIn(out.sessionId)) this.#acked.set(out.sessionId, out.k);
    if (out.k !== 0 || this.#confirmed.has(out.sessionId)) return { valid: true, confirmed: false };
    const s = ss.getSession(out.sessionId);
    if (!s || s.confirmed) return { valid: true, confirmed: false };
    ss.confirm(s.id);
    this.#confirmed.add(s.id);
    return { valid: true, confirmed: true };
  }

  // ── receiving ──────────────────────────────────────────────────────────────

  check(envelope: Uint8Array): EnvelopeReject | null {
    try {
      envelopeKind(envelope);
      return null;
    } catch (err) {
      if (err instanceof SessionError) return rejectForSessionError(err);
      throw err;
    }
  }

  open(envelope: Uint8Array, now: number): Opened {
    const ss = this.#store.sessions;
    const l = this.#o.limits;
    try {
      const kind = envelopeKind(envelope);
      const key = seenKey(envelope);
      const seen = ss.getSeen(key);
      if (seen) {
        const hash = sha256(envelope);
        if (!bytesEqual(seen.envelopeHash, hash)) {
          return { reject: { code: RejectCode.UNKNOWN_SESSION, retryable: false, reason: 'this tag was used for other bytes (is your session state older than ours?)' } };
        }
        return { duplicate: true, receipt: seen.receipt };
      }
      if (kind === 'init') {
        const r = respond({ self: this.#o.identity, prekeys: storePrekeyLookup(this.#store.sessions), envelope, now, maxClockSkewMs: l.maxClockSkewMs, maxTtlMs: l.maxTtlMs, random: this.#o.random });
        const sessionId = toHex(r.state.id);
        const receipt = receiptMac(r.receiptKey, r.message.id, r.envelopeHash);
        const peerHex = toHex(r.peer.identityKey);
        return {
          message: this.#opened(r.message, r.peer.identityKey), envelopeHash: r.envelopeHash, receipt,
          commit: () => {
            ss.insertSession({ id: sessionId, peerIdentity: peerHex, role: 'responder', state: encodeState(r.state), confirmed: true, now });
            this.#store.deposits.setPeerMailboxes(peerHex, r.peer.mailboxes, r.peer.createdAt, now);
            if (r.prekeys.oneTimePrekeyId !== null) ss.deleteOneTimePrekey(r.prekeys.oneTimePrekeyId);
            ss.recordSeen({ seenKey: key, sessionId, messageId: toHex(r.message.id), envelopeHash: r.envelopeHash, receipt, expiresAt: r.message.expiresAt });
          },
          after: () => this.index.add(sessionId, r.state),
        };
      }
      const hit = this.index.lookup(sessionTag(envelope));
      if (!hit) return { reject: { code: RejectCode.UNKNOWN_SESSION, retryable: false, reason: 'no session expects this tag' } };
      const stored = ss.getSession(hit.sessionId);
      if (!stored) return { reject: { code: RejectCode.UNKNOWN_SESSION, retryable: false, reason: 'no session expects this tag' } };
      const state = decodeState(stored.state);
      const skipped = hit.k <= state.recvHighest ? ss.getSkippedKey(hit.sessionId, hit.k) : null;
      const r = decrypt(state, envelope, { k: hit.k, skipped, now, maxClockSkewMs: l.maxClockSkewMs, maxTtlMs: l.maxTtlMs, maxSkip: l.maxSkippedKeys, random: this.#o.random });
      const receipt = receiptMac(r.receiptKey, r.message.id, r.envelopeHash);
      let evicted: number[] = [];
      return {
        message: this.#opened(r.message, peerIdentity(state)), envelopeHash: r.envelopeHash, receipt,
        commit: () => {
          ss.updateState(hit.sessionId, encodeState(r.state), now);
          if (!stored.confirmed) ss.confirm(hit.sessionId);
          if (r.skippedUsed !== null) ss.deleteSkippedKey(hit.sessionId, r.skippedUsed);
          if (r.skippedAdded.length > 0) evicted = ss.putSkippedKeys(hit.sessionId, r.skippedAdded, l.maxSkippedKeys);
          ss.recordSeen({ seenKey: key, sessionId: hit.sessionId, messageId: toHex(r.message.id), envelopeHash: r.envelopeHash, receipt, expiresAt: r.message.expiresAt });
        },
        after: () => {
          this.index.accepted(hit.sessionId, r.state, r.k);
          for (const k of evicted) this.index.drop(hit.sessionId, k);
        },
      };
    } catch (err) {
      if (err instanceof SessionError) return { reject: rejectForSessionError(err) };
      throw err;
    }
  }

  #opened(m: SessionMessage, sender: Uint8Array): Extract<Opened, { message: unknown }>['message'] {
    return {
      id: m.id, kind: m.kind, sender, senderOnion: onionAddress(sender), subject: m.subject, body: m.body, threadId: m.threadId,
      inReplyTo: m.inReplyTo, attachments: m.attachments, createdAt: m.createdAt, expiresAt: m.expiresAt,
    };
  }

  // ── housekeeping ───────────────────────────────────────────────────────────

  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#housekeeping();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Drops what expired, rotates and refills prekeys, forgets idle receive-only sessions; then again later. */
  #housekeeping(): void {
    this.#timer = undefined;
    if (this.#closed) return;
    try {
      const now = this.#o.clock.now();
      const l = this.#o.limits;
      const pruned = this.#store.sessions.prune(now);
      for (const s of pruned.skipped) this.index.drop(s.sessionId, s.k);
      this.#store.pruneSeen(now);
      this.#store.pruneControl();
      this.#ensurePrekeys();
      const idleFor = l.maxTtlMs + l.maxClockSkewMs;
      const peers = new Set(this.#store.sessions.listSessions().filter((s) => !s.current).map((s) => s.peerIdentity));
      for (const peer of peers) {
        for (const id of this.#store.sessions.idleSessions(peer)) {
          const s = this.#store.sessions.getSession(id);
          if (s && now - s.updatedAt > idleFor && !this.#store.sessions.initMessage(id)) {
            this.#store.sessions.deleteSession(id);
            this.index.remove(id);
            this.#acked.delete(id);
          }
        }
      }
    } catch (err) {
      this.#log.warn({ err: describeError(err) }, 'session housekeeping failed; will try again');
    }
    this.#timer = this.#o.clock.setTimeout(() => this.#housekeeping(), this.#o.housekeepingMs ?? 3600_000);
  }
}

