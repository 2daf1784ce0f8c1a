/**
 * The node: the one module that knows every layer. It opens the store, listens for peers, publishes
 * itself through its PeerNetwork (Tor, loopback or memory), runs the outbox, and serves the local API.
 *
 * Start order: store → listener → network.publish → outbox → API → reachability self-check.
 * close() undoes them in reverse, collects every error, and is idempotent.
 *
 * Message path (DESIGN §5):
 *   send:     resolve recipient → seal (now, or at first delivery if only the onion is known and its
 *             bundle must be fetched) → store 'queued' → outbox → dial → DELIVER → verify RECEIPT →
 *             'delivered'
 *   receive:  DELIVER → size check → open (decrypt, unpad, parse, recipient, time, signature) →
 *             group commit → RECEIPT (never before the commit)
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { bytesEqual, fromHex, toHex } from '../bytes.js';
import { systemClock, type Clock } from '../clock.js';
import { describeError, OnionpostError } from '../errors.js';
import { resolveLimits, type Limits } from '../limits.js';
import type { Logger } from '../log.js';
import { API_METHODS, createApiServer, type ApiServer, type Handler } from '../api/index.js';
import {
  CryptoError, DEFAULT_TTL_MS, decodeBundle, encodeBundle, isEnvelopeSize, isOnionAddress, onionAddress, openMessage,
  parseOnionAddress, sealMessage, secureRandomBytes, sha256, signBundle, signReceipt, verifyBundle, verifyReceipt,
  type Identity, type InnerMessage, type RandomBytes,
} from '../crypto/index.js';
import { createMailBridge, type MailBridge } from '../bridge/index.js';
import { createMailPort } from './mail-port.js';
import { createOutbox, type BackoffPolicy, type DeliveryOutcome, type Outbox } from '../outbox/index.js';
import { PeerConnection, RejectCode, rejectCodeName, type DeliverAnswer } from '../protocol/index.js';
import { comparePin, isValidName, normalizeName, resolveNameOrOwner, type IdentityRegistry, type VerifiedRecord } from '../registry/index.js';
import { StoreError, openStore, type Contact, type MessageState, type Store, type StoredMessage, type NewIncoming, type NewOutgoing, type CommitResult } from '../store/index.js';
import { createWsListener, type MessageChannel, type WsListener } from '../transport/index.js';
import { NodeError } from './errors.js';
import { EventBus } from './events.js';
import { GroupCommitter } from './group-commit.js';
import type { NetworkStatus, PeerNetwork } from './network.js';

export interface NodeOptions {
  identity: Identity;
  /** SQLite file (in the node's 0700 data dir). */
  dbPath: string;
  network: PeerNetwork;
  logger: Logger;
  registry?: IdentityRegistry;
  clock?: Clock;
  random?: RandomBytes;
  limits?: Partial<Limits>;
  outbox?: { policy?: Partial<BackoffPolicy>; perPeerConcurrency?: number; maxConcurrency?: number };
  /** The local API; omit for none (tests drive `handlers` directly). */
  api?: { port?: number; token: string; web?: (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean> };
  /** The mail bridge (SMTP and IMAP on 127.0.0.1, src/bridge/); omit for none. Ports: 0 = any free port. */
  bridge?: { smtpPort: number; imapPort: number; password: string };
  /** Dial deadline, ms. Default 45 s (onion rendezvous). */
  dialTimeoutMs?: number;
  /** DELIVER → RECEIPT deadline, ms. Default 60 s. */
  deliverTimeoutMs?: number;
  /** How long the reachability self-check keeps trying, ms. Default 120 s. */
  selfCheckTimeoutMs?: number;
  /** Fault injection for tests: runs after an inbound batch committed, before its receipts go out. */
  hooks?: { afterInboundCommit?: (ids: string[]) => void };
}

export interface NodeStatus {
  onion: string;
  identityKey: string;
  encryptionKey: string;
  reachable: boolean;
  tor: NetworkStatus;
  counts: Record<string, number>;
  peers: { connected: number };
  listener: { port: number } | null;
  api: { url: string } | null;
  warnings: { type: string; alias?: string; message: string }[];
}

export interface SendParams {
  to: string;
  subject?: string;
  body?: string;
  kind?: 'mail' | 'chat';
  threadId?: string;
  inReplyTo?: string;
  /** Files to carry (at most 16; subject, body and files together at most MESSAGE_CAPACITY bytes). */
  attachments?: { name: string; mediaType: string; data: Uint8Array }[];
  ttlMs?: number;
  wait?: boolean;
  waitMs?: number;
}

export interface SendResult {
  id: string;
  state: MessageState;
  to: string;
  reason?: string;
}

const TERMINAL: ReadonlySet<string> = new Set(['delivered', 'failed', 'expired', 'held']);

interface Recipient {
  identityKey: Uint8Array;
  onion: string;
  label: string | null;
  encryptionKey: Uint8Array | null;
  held: string | null;
}

/** Summary shape shared by the API, the CLI and the web UI. */
function summary(m: StoredMessage) {
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

function contactView(c: Contact) {
  return {
    alias: c.alias, onion: c.onion, identityKey: c.identityKey, encryptionKey: c.encryptionKey, source: c.source,
    registryName: c.registryName, registryVersion: c.registryVersion, pinnedAt: c.pinnedAt, keyChange: c.keyChange,
  };
}

/** Maps a failure to open an envelope to what the sender is told. */
function rejectFor(err: CryptoError): { code: number; retryable: boolean; reason: string } {
  const map: Partial<Record<string, number>> = {
    DECRYPT_FAILED: RejectCode.DECRYPT_FAILED, WRONG_RECIPIENT: RejectCode.WRONG_RECIPIENT, BAD_SIGNATURE: RejectCode.BAD_SIGNATURE,
    CLOCK_SKEW: RejectCode.CLOCK_SKEW, EXPIRED: RejectCode.EXPIRED, ENVELOPE_SIZE: RejectCode.TOO_LARGE,
    UNSUPPORTED_VERSION: RejectCode.UNSUPPORTED_VERSION,
  };
  const code = map[err.code] ?? RejectCode.MALFORMED;
  return { code, retryable: code === RejectCode.CLOCK_SKEW, reason: err.message };
}

export class OnionpostNode {
  readonly identity: Identity;
  readonly events = new EventBus();
  readonly handlers: Readonly<Record<string, Handler>>;
  readonly #o: NodeOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #random: RandomBytes;
  readonly #limits: Limits;
  #store: Store | undefined;
  #listener: WsListener | undefined;
  #outbox: Outbox | undefined;
  #api: ApiServer | undefined;
  #bridge: MailBridge | undefined;
  #bundle: Uint8Array | undefined;
  #committer: GroupCommitter<NewIncoming, CommitResult> | undefined;
  #outgoing: GroupCommitter<NewOutgoing, StoredMessage> | undefined;
  #kickScheduled = false;
  readonly #inbound = new Set<PeerConnection>();
  readonly #peers = new Map<string, PeerConnection>();
  readonly #dialing = new Map<string, Promise<PeerConnection>>();
  readonly #closeController = new AbortController();
  #reachable = false;
  #started = false;
  #closing: Promise<void> | undefined;
  #unsubscribeNetwork: (() => void) | undefined;

  constructor(opts: NodeOptions) {
    this.#o = opts;
    this.identity = opts.identity;
    this.#log = opts.logger.child({ layer: 'node' });
    this.#clock = opts.clock ?? systemClock;
    this.#random = opts.random ?? secureRandomBytes;
    this.#limits = resolveLimits(opts.limits);
    this.handlers = this.#makeHandlers();
  }

  get store(): Store {
    if (!this.#store) throw new NodeError('NOT_STARTED', 'node not started');
    return this.#store;
  }

  get apiUrl(): string | null {
    return this.#api?.url ?? null;
  }

  get reachable(): boolean {
    return this.#reachable;
  }

  /** The mail bridge's addresses, or null when it is off. */
  get mailBridge(): MailBridge | null {
    return this.#bridge ?? null;
  }

  /** Resolves a recipient as send() would (onion, contact or registry name), without sending. */
  async resolveRecipient(to: string, signal: AbortSignal): Promise<{ onion: string; label: string | null }> {
    const r = await this.#resolve(to, signal);
    if (bytesEqual(r.identityKey, this.identity.identityKey)) throw new NodeError('SELF', 'that is your own address');
    return { onion: r.onion, label: r.label };
  }

  /** Opens everything in order; on failure, closes what was opened and rethrows. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    try {
      this.#store = openStore({ path: this.#o.dbPath, logger: this.#o.logger.child({ layer: 'store' }), clock: this.#clock });
      const store = this.#store;
      this.#committer = new GroupCommitter((items) => {
        const results = store.commitIncomingBatch(items);
        this.#o.hooks?.afterInboundCommit?.(items.map((i) => i.id));
        return results;
      });
      // Sends queued in the same turn share one transaction (one fsync); each send() still resolves
      // only after its own row committed.
      this.#outgoing = new GroupCommitter((items) => store.batch(() => items.map((m) => store.insertOutgoing(m))));
      this.#bundle = encodeBundle(signBundle(this.identity, { now: this.#clock.now() }));
      this.#listener = await this.#listen();
      let generation = 0;
      this.#unsubscribeNetwork = this.#o.network.onStatus((s) => {
        this.events.emit({ type: 'tor.status', ...s, reachable: this.#reachable });
        const g = s.generation ?? 0;
        if (g > generation) {
          if (generation > 0) this.networkRecovered();
          generation = g;
        }
      });
      await this.#o.network.publish(this.identity.onion, { port: this.#listener.port, onChannel: (ch) => this.#accept(ch) }, this.#closeController.signal);
      this.#outbox = createOutbox({
        store, clock: this.#clock, logger: this.#o.logger.child({ layer: 'outbox' }),
        deliver: (m, signal) => this.#deliver(m, signal),
        perPeerConcurrency: this.#o.outbox?.perPeerConcurrency ?? 32,
        maxConcurrency: this.#o.outbox?.maxConcurrency ?? 256,
        ...(this.#o.outbox?.policy ? { policy: this.#o.outbox.policy } : {}),
        onChange: (id, state, d) => this.events.emit({ type: 'message.state', id, state, ...d }),
      });
      this.#outbox.start();
      if (this.#o.bridge) {
        const b = this.#o.bridge;
        this.#bridge = await createMailBridge({
          mailPort: createMailPort(this), password: b.password, smtpPort: b.smtpPort, imapPort: b.imapPort,
          logger: this.#o.logger.child({ layer: 'bridge' }), clock: this.#clock,
        });
      }
      if (this.#o.api) {
        this.#api = await createApiServer({
          port: this.#o.api.port ?? 0, token: this.#o.api.token, methods: API_METHODS, handlers: this.handlers, events: this.events,
          logger: this.#o.logger.child({ layer: 'api' }), ...(this.#o.api.web ? { web: this.#o.api.web } : {}),
        });
      }
      void this.#selfCheck();
    } catch (err) {
      await this.close().catch(() => {});
      throw err;
    }
  }

  #listen(): Promise<WsListener> {
    return createWsListener({
      host: '127.0.0.1', port: 0, limits: this.#limits, logger: this.#o.logger.child({ layer: 'transport' }), clock: this.#clock,
      onChannel: (ch) => this.#accept(ch),
    });
  }

  /** An inbound connection: we are the server side of the protocol. */
  #accept(channel: MessageChannel): void {
    const conn = new PeerConnection({
      channel, role: 'server', limits: this.#limits, clock: this.#clock, logger: this.#o.logger.child({ layer: 'protocol' }),
      handlers: { onDeliver: (id, env) => this.#onDeliver(id, env), onBundleRequest: () => this.#bundle! },
    });
    this.#inbound.add(conn);
    void conn.closed.then(() => this.#inbound.delete(conn));
  }

  async #onDeliver(messageId: Uint8Array, envelope: Uint8Array): Promise<DeliverAnswer> {
    if (!isEnvelopeSize(envelope.length)) {
      return { reject: { code: envelope.length > this.#limits.maxEnvelope ? RejectCode.TOO_LARGE : RejectCode.MALFORMED, retryable: false, reason: 'envelope size is not a padding bucket' } };
    }
    const now = this.#clock.now();
    let m: InnerMessage;
    try {
      m = openMessage(this.identity, envelope, { now, maxSkewMs: this.#limits.maxClockSkewMs });
    } catch (err) {
      if (err instanceof CryptoError) return { reject: rejectFor(err) };
      throw err;
    }
    if (!bytesEqual(m.id, messageId)) return { reject: { code: RejectCode.MALFORMED, retryable: false, reason: 'frame message id differs from the sealed one' } };
    if (m.kind === 'read') return { reject: { code: RejectCode.MALFORMED, retryable: false, reason: 'read receipts are not supported yet' } };
    const envelopeHash = sha256(envelope);
    const id = toHex(m.id);
    const senderHex = toHex(m.sender);
    const contact = this.store.getContact(senderHex);
    let result: CommitResult;
    try {
      result = await this.#committer!.commit({
        id, kind: m.kind, peerIdentity: senderHex, peerOnion: m.senderOnion, peerLabel: contact?.alias ?? null,
        subject: m.subject, body: m.body, threadId: m.threadId ? toHex(m.threadId) : null, inReplyTo: m.inReplyTo ? toHex(m.inReplyTo) : null,
        createdAt: m.createdAt, expiresAt: m.expiresAt, receivedAt: now, envelopeHash,
        receipt: signReceipt(this.identity, m.id, envelopeHash), attachments: m.attachments,
      });
    } catch (err) {
      if (err instanceof StoreError && err.code === 'DISK_FULL') {
        this.#log.error('disk full: refusing inbound mail until space is freed (senders keep it and retry)');
        return { reject: { code: RejectCode.STORAGE_FULL, retryable: true, reason: 'recipient storage full' } };
      }
      throw err;
    }
    if (result.conflict) return { reject: { code: RejectCode.MALFORMED, retryable: false, reason: 'message id already used for another message' } };
    if (!result.duplicate) {
      this.events.emit({ type: 'message.received', id, from: m.senderOnion, subject: m.subject, kind: m.kind, peerLabel: contact?.alias });
    }
    return { receipt: { envelopeHash, signature: result.receipt } };
  }

  /** A client connection to `onion`, reused while open. */
  async #connect(onion: string, signal: AbortSignal): Promise<PeerConnection> {
    const open = this.#peers.get(onion);
    if (open && open.state === 'open') return open;
    const pending = this.#dialing.get(onion);
    if (pending) return pending;
    const p = (async () => {
      const channel = await this.#o.network.dial(onion, { signal, timeoutMs: this.#o.dialTimeoutMs ?? 45_000, limits: this.#limits });
      const conn = new PeerConnection({ channel, role: 'client', limits: this.#limits, clock: this.#clock, logger: this.#o.logger.child({ layer: 'protocol' }) });
      await conn.ready;
      this.#peers.set(onion, conn);
      void conn.closed.then(() => {
        if (this.#peers.get(onion) === conn) this.#peers.delete(onion);
      });
      return conn;
    })();
    this.#dialing.set(onion, p);
    try {
      return await p;
    } finally {
      this.#dialing.delete(onion);
    }
  }

  /** One delivery attempt, called by the outbox. Every failure becomes an outcome, never a throw. */
  async #deliver(m: StoredMessage, signal: AbortSignal): Promise<DeliveryOutcome> {
    const onion = m.peerOnion;
    if (!onion) return { kind: 'failed', code: 'NO_ADDRESS', reason: 'message has no recipient onion' };
    const peerKey = fromHex(m.peerIdentity);
    try {
      const conn = await this.#connect(onion, signal);
      let envelope = m.envelope;
      let hash = m.envelopeHash;
      if (!envelope || envelope.length === 0) {
        const bundle = decodeBundle(await conn.requestBundle({ signal, timeoutMs: this.#o.deliverTimeoutMs ?? 60_000 }));
        verifyBundle(bundle, { now: this.#clock.now(), expectedIdentity: peerKey });
        const sealed = sealMessage(this.identity, bundle.encryptionKey, {
          kind: m.kind, recipient: bundle.identityKey, subject: m.subject ?? '', body: m.body,
          ...(m.threadId !== m.id ? { threadId: fromHex(m.threadId) } : {}), ...(m.inReplyTo ? { inReplyTo: fromHex(m.inReplyTo) } : {}),
          ...(m.attachmentCount > 0 ? { attachments: this.store.getAttachments(m.id) } : {}),
        }, { now: m.createdAt, id: fromHex(m.id), expiresAt: m.expiresAt, random: this.#random });
        this.store.setEnvelope(m.id, sealed.envelope, sealed.envelopeHash);
        const contact = this.store.getContact(m.peerIdentity);
        if (contact && !contact.encryptionKey) this.store.upsertContact({ ...contact, encryptionKey: toHex(bundle.encryptionKey), pinnedBundle: encodeBundle(bundle), pinnedAt: this.#clock.now() });
        envelope = sealed.envelope;
        hash = sealed.envelopeHash;
      }
      const res = await conn.deliver(fromHex(m.id), envelope, { signal, timeoutMs: this.#o.deliverTimeoutMs ?? 60_000 });
      if (res.kind === 'reject') {
        const code = rejectCodeName(res.code);
        if (!res.retryable) return { kind: 'failed', code, reason: res.reason || code };
        return { kind: 'retry', code, when: res.code === RejectCode.STORAGE_FULL ? 'later' : res.code === RejectCode.BUSY ? 'busy' : 'soon' };
      }
      if (!hash || !bytesEqual(res.envelopeHash, hash)) return { kind: 'retry', code: 'BAD_RECEIPT', when: 'soon' };
      try {
        verifyReceipt(peerKey, fromHex(m.id), hash, res.signature);
      } catch {
        return { kind: 'retry', code: 'BAD_RECEIPT', when: 'soon' };
      }
      return { kind: 'delivered', receipt: res.signature };
    } catch (err) {
      return this.#failureOutcome(err);
    }
  }

  #failureOutcome(err: unknown): DeliveryOutcome {
    if (err instanceof CryptoError) return { kind: 'retry', code: err.code, when: 'later' };
    // A dial error may carry Tor's SOCKS classification (retry: soon | later | never) in its cause chain.
    for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
      const retry = (e as { retry?: string }).retry;
      const code = (e as { code?: string }).code;
      if (retry === 'never' && code) return { kind: 'failed', code, reason: describeError(e) };
      // Tor's 'later' means "the peer looks offline". That is the normal case the backoff schedule is
      // made for (2 s doubling to 2 min, then the slow phase), so a peer back within a minute gets
      // its mail within a minute; skipping straight to the 5-minute slow phase would not.
      if ((retry === 'soon' || retry === 'later') && code) return { kind: 'retry', code, when: 'soon' };
    }
    const code = err instanceof OnionpostError ? err.code : 'UNEXPECTED';
    if (!(err instanceof OnionpostError) || err instanceof StoreError) this.#log.warn({ err: describeError(err) }, 'delivery attempt failed unexpectedly');
    return { kind: 'retry', code, when: 'soon' };
  }

  /** Dials our own onion until it answers with our bundle: only then are we reachable. */
  async #selfCheck(): Promise<void> {
    const deadline = this.#clock.now() + (this.#o.selfCheckTimeoutMs ?? 120_000);
    const signal = this.#closeController.signal;
    for (let attempt = 1; !signal.aborted && this.#clock.now() < deadline; attempt++) {
      try {
        const channel = await this.#o.network.dial(this.identity.onion, { signal, timeoutMs: 30_000, limits: this.#limits });
        const conn = new PeerConnection({ channel, role: 'client', limits: this.#limits, clock: this.#clock });
        try {
          await conn.ready;
          const b = decodeBundle(await conn.requestBundle({ signal, timeoutMs: 30_000 }));
          if (!bytesEqual(b.identityKey, this.identity.identityKey)) throw new Error('another service answered at our onion');
        } finally {
          await conn.close();
        }
        this.#reachable = true;
        this.#log.info({ attempt }, 'our onion is reachable');
        this.events.emit({ type: 'tor.status', ...this.#o.network.status(), reachable: true });
        return;
      } catch (err) {
        this.#log.debug({ attempt, err: describeError(err) }, 'self-check: not reachable yet');
        await new Promise((r) => setTimeout(r, Math.min(1000 * attempt, 5000)).unref());
      }
    }
    if (!signal.aborted) this.#log.warn('our onion did not become reachable within the self-check window');
  }

  /** Test seam: drops every connection at once, as a crash would (no close handshake). */
  dropConnections(): void {
    for (const c of [...this.#peers.values(), ...this.#inbound]) c.destroy();
  }

  /** Called by the Tor network after it restarted and re-published: check again, and resume the outbox. */
  networkRecovered(): void {
    this.#reachable = false;
    for (const c of this.#peers.values()) c.destroy();
    this.#peers.clear();
    this.#outbox?.kick();
    void this.#selfCheck();
  }

  // ── recipients, contacts, registry ─────────────────────────────────────────

  async #resolve(to: string, signal: AbortSignal): Promise<Recipient> {
    const input = to.trim();
    // Anything that looks like an onion is parsed as one, so a typo reports the checksum, not "unknown".
    if (isOnionAddress(input) || /\.onion$/i.test(input)) {
      const { onion, identityKey } = parseOnionAddress(input);
      const c = this.store.getContact(toHex(identityKey));
      return { identityKey, onion, label: c?.alias ?? null, encryptionKey: c?.encryptionKey ? fromHex(c.encryptionKey) : null, held: c?.keyChange?.reason ?? null };
    }
    const contact = this.store.getContact(input);
    if (contact?.registryName && this.#o.registry) return this.#resolveName(contact.registryName, signal, contact);
    if (contact) {
      return { identityKey: fromHex(contact.identityKey), onion: contact.onion, label: contact.alias, encryptionKey: contact.encryptionKey ? fromHex(contact.encryptionKey) : null, held: contact.keyChange?.reason ?? null };
    }
    if (isValidName(input)) {
      if (!this.#o.registry) throw new NodeError('NO_REGISTRY', `"${input}" is not a contact or an onion address, and this node has no registry configured to look names up`);
      return this.#resolveName(normalizeName(input), signal, null);
    }
    throw new NodeError('UNKNOWN_RECIPIENT', `"${input}" is not an onion address, a contact, or a valid registry name`);
  }

  /** Looks a name up, verifies it, and applies the pinning policy to the contact book. */
  async #resolveName(name: string, signal: AbortSignal, known: Contact | null): Promise<Recipient> {
    const rec = await this.#o.registry!.resolveName(name, { signal });
    if (!rec) {
      if (known) return this.#fromContact(known);
      throw new NodeError('UNKNOWN_RECIPIENT', `no one has registered the name "${name}"`);
    }
    const contact = known ?? this.store.getContact(name) ?? this.store.listContacts().find((c) => c.registryName === rec.name) ?? null;
    const c = this.#applyRecord(contact, rec);
    return this.#fromContact(c);
  }

  #fromContact(c: Contact): Recipient {
    return { identityKey: fromHex(c.identityKey), onion: c.onion, label: c.alias, encryptionKey: c.encryptionKey ? fromHex(c.encryptionKey) : null, held: c.keyChange?.reason ?? null };
  }

  #applyRecord(contact: Contact | null, rec: VerifiedRecord, aliasForNew = rec.name): Contact {
    const now = this.#clock.now();
    const pin = contact?.encryptionKey ? { identityKey: fromHex(contact.identityKey), encryptionKey: fromHex(contact.encryptionKey), version: contact.registryVersion ?? 0 } : null;
    const verdict = comparePin(pin, rec);
    const fresh = {
      identityKey: toHex(rec.identityKey), encryptionKey: toHex(rec.encryptionKey), onion: rec.onion, source: 'registry' as const,
      registryName: rec.name, registryOwner: rec.owner, registryVersion: rec.version, pinnedAt: now, keyChange: null,
    };
    switch (verdict.kind) {
      case 'new':
        return this.store.upsertContact({ alias: contact?.alias ?? aliasForNew, ...fresh });
      case 'same':
        return contact!;
      case 'updated':
      case 'rotated':
        if (verdict.kind === 'rotated') this.#log.info({ alias: contact!.alias }, 'contact rotated to a new identity key with a valid statement');
        return this.store.upsertContact({ ...contact!, ...fresh });
      case 'conflict': {
        const c = contact!;
        if (!c.keyChange || c.keyChange.identityKey !== fresh.identityKey || c.keyChange.registryVersion !== rec.version) {
          this.store.setKeyChange(c.alias, { identityKey: fresh.identityKey, encryptionKey: fresh.encryptionKey, onion: rec.onion, seenAt: now, reason: verdict.reason, registryVersion: rec.version });
          this.store.holdForPeer(c.identityKey, `key change: ${verdict.reason}`);
          this.#log.warn({ alias: c.alias }, 'contact key changed without a valid rotation statement: messages held');
          this.events.emit({ type: 'contact.keyChange', alias: c.alias, reason: verdict.reason });
        }
        return this.store.getContact(c.alias)!;
      }
    }
  }

  #heldFor(peerIdentity: string): StoredMessage[] {
    return this.store.listMessages({ direction: 'out', state: 'held', peer: peerIdentity, limit: 500 });
  }

  #approveKeyChange(alias: string): Contact {
    const c = this.store.getContact(alias);
    if (!c) throw new NodeError('NOT_FOUND', `no contact "${alias}"`);
    const k = c.keyChange;
    if (!k) throw new NodeError('NO_KEY_CHANGE', `${c.alias} has no pending key change`);
    const now = this.#clock.now();
    const oldIdentity = c.identityKey;
    const updated = this.store.upsertContact({ ...c, identityKey: k.identityKey, encryptionKey: k.encryptionKey, onion: k.onion ?? onionAddress(fromHex(k.identityKey)), registryVersion: k.registryVersion ?? c.registryVersion, pinnedAt: now, keyChange: null });
    // Held messages were sealed to the old key: re-send each to the approved key, mark the old copy
    // failed. Each page leaves 'held', so the loop ends when none is left.
    const to = this.#fromContact(updated);
    for (let held = this.#heldFor(oldIdentity); held.length > 0; held = this.#heldFor(oldIdentity)) {
      this.store.batch(() => {
        for (const m of held) {
          this.#queue(to, { to: updated.alias, subject: m.subject ?? '', body: m.body, kind: m.kind, ttlMs: Math.max(60_000, m.expiresAt - now) });
          this.store.transition(m.id, 'failed', { from: ['held'], reason: 'superseded: re-sent to the approved new key' });
        }
      });
    }
    this.#outbox?.kick();
    return updated;
  }

  // ── sending ────────────────────────────────────────────────────────────────

  #queue(r: Recipient, p: SendParams): StoredMessage {
    return this.store.insertOutgoing(this.#prepare(r, p));
  }

  /** Seals (when the recipient's encryption key is known) and builds the row `insertOutgoing` takes. */
  #prepare(r: Recipient, p: SendParams): NewOutgoing {
    const now = this.#clock.now();
    const id = this.#random(16);
    const kind = p.kind ?? 'mail';
    const ttl = Math.min(p.ttlMs ?? DEFAULT_TTL_MS, this.#limits.maxTtlMs);
    const expiresAt = now + ttl;
    let envelope: Uint8Array = new Uint8Array(0);
    let envelopeHash: Uint8Array = new Uint8Array(0);
    if (r.encryptionKey) {
      const sealed = sealMessage(this.identity, r.encryptionKey, {
        kind, recipient: r.identityKey as never, subject: p.subject ?? '', body: p.body ?? '',
        ...(p.threadId ? { threadId: fromHex(p.threadId) } : {}), ...(p.inReplyTo ? { inReplyTo: fromHex(p.inReplyTo) } : {}),
        ...(p.attachments?.length ? { attachments: p.attachments } : {}),
      }, { now, id, expiresAt, random: this.#random });
      envelope = sealed.envelope;
      envelopeHash = sealed.envelopeHash;
    }
    return {
      id: toHex(id), kind, peerIdentity: toHex(r.identityKey), peerOnion: r.onion, peerLabel: r.label, subject: p.subject ?? '',
      body: p.body ?? '', threadId: p.threadId ?? null, inReplyTo: p.inReplyTo ?? null, createdAt: now, expiresAt, envelope, envelopeHash,
      ...(p.attachments?.length ? { attachments: p.attachments } : {}),
      ...(r.held ? { state: 'held' as const, stateReason: `key change: ${r.held}` } : {}),
    };
  }

  /** Queues a message; with `wait`, resolves when it reaches a final state or `waitMs` passes. */
  async send(p: SendParams): Promise<SendResult> {
    const signal = AbortSignal.any([this.#closeController.signal, AbortSignal.timeout(60_000)]);
    const r = await this.#resolve(p.to, signal);
    if (bytesEqual(r.identityKey, this.identity.identityKey)) throw new NodeError('SELF', 'that is your own address');
    const draft = this.#prepare(r, p);
    // Resolves once the row is committed (group commit with the other sends of this turn).
    const row = await this.#outgoing!.commit(draft);
    // Subscribed before the outbox is kicked (#kickSoon defers it), so no state change is missed.
    const waitDone = p.wait ? this.#waitFor(row.id, p.waitMs ?? 120_000) : null;
    this.events.emit({ type: 'message.state', id: row.id, state: row.state });
    this.#kickSoon();
    const final = waitDone ? await waitDone : row;
    return { id: row.id, state: final.state, to: row.peerOnion ?? r.onion, ...(final.stateReason && final.state !== 'delivered' ? { reason: final.stateReason } : {}) };
  }

  /** One outbox kick for all the sends that committed together (each kick queries the store). */
  #kickSoon(): void {
    if (this.#kickScheduled) return;
    this.#kickScheduled = true;
    queueMicrotask(() => {
      this.#kickScheduled = false;
      this.#outbox?.kick();
    });
  }

  #waitFor(id: string, ms: number): Promise<StoredMessage> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const check = () => {
        const m = this.store.getMessage(id);
        if (m && TERMINAL.has(m.state)) finish(m);
      };
      const finish = (m: StoredMessage) => {
        off();
        clearTimeout(timer);
        resolve(m);
      };
      const off = this.events.subscribe((ev) => {
        if (ev.type === 'message.state' && ev.id === id) check();
      });
      timer = setTimeout(() => finish(this.store.getMessage(id)!), ms);
      queueMicrotask(check);
    });
  }

  // ── status and API ─────────────────────────────────────────────────────────

  status(): NodeStatus {
    const counts = this.#store ? { ...this.store.counts() } : {};
    const warnings = this.#store
      ? this.store.listContacts().filter((c) => c.keyChange).map((c) => ({ type: 'contact.keyChange', alias: c.alias, message: `${c.alias}'s keys changed (${c.keyChange!.reason}); messages to them are held until you approve` }))
      : [];
    return {
      onion: this.identity.onion, identityKey: toHex(this.identity.identityKey), encryptionKey: toHex(this.identity.encryptionKey),
      reachable: this.#reachable, tor: this.#o.network.status(), counts: counts as Record<string, number>,
      peers: { connected: this.#peers.size + this.#inbound.size }, listener: this.#listener ? { port: this.#listener.port } : null,
      api: this.#api ? { url: this.#api.url } : null, warnings,
    };
  }

  #findMessage(idOrPrefix: string): StoredMessage {
    const matches = this.store.listMessages({ idPrefix: idOrPrefix.toLowerCase(), limit: 2 });
    if (matches.length === 0) throw new NodeError('NOT_FOUND', `no message ${idOrPrefix}`);
    if (matches.length > 1 && matches[0]!.id !== idOrPrefix.toLowerCase()) {
      throw new NodeError('AMBIGUOUS_ID', `${idOrPrefix} matches more than one message; give more characters`);
    }
    return matches[0]!;
  }

  #makeHandlers(): Record<string, Handler> {
    const p = <T>(x: Record<string, unknown>) => x as T;
    return {
      'node.address': () => ({ onion: this.identity.onion, identityKey: toHex(this.identity.identityKey), encryptionKey: toHex(this.identity.encryptionKey) }),
      'node.status': () => this.status(),
      'messages.send': (x) => this.send(p<SendParams>(x)),
      'messages.inbox': (x) => {
        const q = p<{ limit?: number; before?: number; kind?: 'mail' | 'chat' }>(x);
        return this.store.listMessages({ direction: 'in', limit: q.limit ?? 50, ...(q.before ? { before: q.before } : {}), ...(q.kind ? { kind: q.kind } : {}) }).map(summary);
      },
      'messages.outbox': (x) => {
        const q = p<{ limit?: number; before?: number }>(x);
        return this.store.listMessages({ direction: 'out', limit: q.limit ?? 50, ...(q.before ? { before: q.before } : {}) }).map(summary);
      },
      'messages.get': (x) => {
        const m = this.#findMessage(p<{ id: string }>(x).id);
        if (m.direction === 'in' && !m.read) {
          this.store.markRead(m.id);
          this.events.emit({ type: 'message.read', id: m.id });
        }
        return { ...summary(m), read: m.direction === 'in' ? true : m.read, body: m.body, inReplyTo: m.inReplyTo, expiresAt: m.expiresAt, events: this.store.listEvents(m.id) };
      },
      'messages.thread': (x) => this.store.listMessages({ thread: p<{ threadId: string }>(x).threadId, limit: 1000 }).map(summary).reverse(),
      'bridge.settings': () => {
        const b = this.#bridge;
        if (!b || !this.#o.bridge) throw new NodeError('BRIDGE_OFF', 'the mail bridge is off (start the node without --no-bridge)');
        return { smtp: b.smtp, imap: b.imap, user: b.user, password: this.#o.bridge.password, address: b.user };
      },
      'contacts.list': () => this.store.listContacts().map(contactView),
      'contacts.add': async (x) => {
        const q = p<{ alias: string; address: string }>(x);
        if (isOnionAddress(q.address)) {
          const { onion, identityKey } = parseOnionAddress(q.address);
          return contactView(this.store.upsertContact({ alias: q.alias, identityKey: toHex(identityKey), onion, source: 'onion' }));
        }
        if (!this.#o.registry) throw new NodeError('NO_REGISTRY', 'not an onion address, and this node has no registry to look names up');
        const rec = await this.#o.registry.resolveName(normalizeName(q.address), { signal: AbortSignal.timeout(60_000) });
        if (!rec) throw new NodeError('UNKNOWN_RECIPIENT', `no one has registered the name "${q.address}"`);
        const existing = this.store.getContact(q.alias) ?? this.store.listContacts().find((c) => c.registryName === rec.name) ?? null;
        return contactView(this.#applyRecord(existing, rec, q.alias));
      },
      'contacts.remove': (x) => ({ removed: this.store.removeContact(p<{ alias: string }>(x).alias) }),
      'contacts.approveKeyChange': (x) => contactView(this.#approveKeyChange(p<{ alias: string }>(x).alias)),
      'registry.lookup': async (x) => {
        if (!this.#o.registry) throw new NodeError('NO_REGISTRY', 'this node has no registry configured');
        const name = p<{ name: string }>(x).name;
        const rec = await resolveNameOrOwner(this.#o.registry, name);
        if (!rec) throw new NodeError('NOT_FOUND', `"${name}" is not registered`);
        return recordView(rec);
      },
    };
  }

  /** Stops everything in reverse start order; collects errors; same promise on every call. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closeController.abort(new NodeError('CLOSED', 'node closed'));
      const errors: unknown[] = [];
      const step = async (what: string, fn: () => unknown) => {
        try {
          await fn();
        } catch (err) {
          errors.push(err);
          this.#log.warn({ err: describeError(err) }, `closing ${what} failed`);
        }
      };
      await step('api', () => this.#api?.close());
      await step('bridge', () => this.#bridge?.close());
      await step('outbox', () => this.#outbox?.close());
      await step('peers', () => Promise.all([...this.#peers.values(), ...this.#inbound].map((c) => c.close())));
      this.#unsubscribeNetwork?.();
      await step('network', () => this.#o.network.close());
      await step('listener', () => this.#listener?.close());
      await step('store', () => this.#store?.close());
      if (errors.length > 0) this.#log.warn({ count: errors.length }, 'node closed with errors');
    })();
    return this.#closing;
  }
}

export function recordView(rec: VerifiedRecord) {
  return {
    name: rec.name, owner: rec.owner, onion: rec.onion, identityKey: toHex(rec.identityKey), encryptionKey: toHex(rec.encryptionKey),
    mailboxes: rec.mailboxes, version: rec.version, contract: rec.contract, rotation: rec.rotation ? { from: toHex(rec.rotation.oldIdentity) } : null,
  };
}
