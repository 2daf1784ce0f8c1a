/**
 * The node: the one module that knows every layer. It chooses the implementations, starts them in
 * order, stops them in reverse, and relays their events; what happens to a message lives in the
 * pipeline (src/pipeline/), who a recipient is in the contact policy (src/contacts/), and what the
 * API answers in its handlers (src/api/handlers.ts).
 *
 * Start order: store → contacts, envelopes, pipeline → provider role (if any) → listener → mail bridge → API → network.publish →
 * outbox → reachability self-check. The API comes up before the network is published, so
 * `onionpost start` can print the sign-in link and the status page can show Tor's bootstrap while
 * it runs (a send meanwhile is queued in the store; the outbox picks it up when it starts).
 * close() undoes them in reverse, except that the API and the mail bridge go first: they stop taking requests and let
 * those already running finish while everything they need is still up. It collects every error and
 * is idempotent.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fromHex, toHex } from '../bytes.js';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import { describeError } from '../errors.js';
import { PADDING_BUCKETS, resolveLimits, type ApiLimits, type Limits } from '../limits.js';
import type { Logger } from '../log.js';
import { API_METHODS, createApiServer, createHandlers, type ApiServer, type Handler } from '../api/index.js';
import { createMailBridge, type MailBridge } from '../bridge/index.js';
import { ContactPolicy, recipientOf } from '../contacts/index.js';
import {
  formatSafetyNumber, isOnionAddress, parseOnionAddress, safetyNumber, secureRandomBytes, subscriberTagKey,
  type Identity, type RandomBytes,
} from '../crypto/index.js';
import { createOutbox, type BackoffPolicy, type Outbox } from '../outbox/index.js';
import { Connections, MessagePipeline, SessionEnvelopes, claimedName, nameCapability, type Envelopes, type SendParams, type SendResult } from '../pipeline/index.js';
import { PeerConnection, closedForMisbehaviour } from '../protocol/index.js';
import { MAILBOX_PATH, MailboxService, ProviderStore, type ProviderLimits, type ProviderStats } from '../provider/index.js';
import type { IdentityRegistry, ProviderDirectory } from '../registry/index.js';
import { MAX_ATTACHMENTS, MESSAGE_CAPACITY } from '../session/index.js';
import { OWN_IDENTITY_SETTING, isControlKind, openStore, type Store } from '../store/index.js';
import { createWsListener, type GuardStats, type MessageChannel, type WsListener } from '../transport/index.js';
import { InboundAdmission, type AdmissionStats } from './admission.js';
import { MailboxesError, NodeError } from './errors.js';
import { Courier } from './courier.js';
import { FirstContact } from './first-contact.js';
import { UserMailboxes, type MailboxView } from './mailboxes.js';
import { MailboxReview, type MailboxReviewOptions } from './mailbox-review.js';
import { ReadReceipts } from './read-receipts.js';
import { ContactQueues } from './contact-queues.js';
import { ProviderScores, type ProviderScoresOptions } from './provider-scores.js';
import { directoryPayments } from './provider-payments.js';
import { DIRECTORY_READ_TIMEOUT_MS, providerListings } from './provider-listings.js';
import { EventBus } from './events.js';
import { createMailPort } from './mail-port.js';
import type { NetworkStatus, PeerNetwork } from './network.js';
import { Reachability } from './reachability.js';

export interface NodeOptions {
  identity: Identity;
  /**
   * Run hidden (issue 11, item 8): publish the listener at this onion (its key is not the identity
   * key) instead of the one the identity key names, and tell it to contacts inside their sessions
   * (PROTOCOL.md §9.2 kind 5). Strangers who read the registry find an onion that is never online
   * and reach us through our mailbox providers. Default: the identity's onion, not hidden.
   */
  directOnion?: string;
  /** SQLite file (in the node's 0700 data dir). */
  dbPath: string;
  network: PeerNetwork;
  logger: Logger;
  registry?: IdentityRegistry;
  /**
   * A read-only client of the provider directory (closed by its owner): `providers.list` and
   * `providers.show` read it (provider-listings.ts). Omit for none: those answer NO_DIRECTORY.
   */
  directory?: ProviderDirectory;
  clock?: Clock;
  random?: RandomBytes;
  limits?: Partial<Limits>;
  outbox?: { policy?: Partial<BackoffPolicy>; perPeerConcurrency?: number; maxConcurrency?: number };
  /** The local API; omit for none (tests drive `handlers` directly). */
  api?: {
    port?: number;
    token: string;
    web?: (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;
    limits?: Partial<ApiLimits>;
    /** Called once the API listens (before Tor has bootstrapped), with its base URL. */
    onListening?: (url: string) => void;
  };
  /**
   * The mailbox-provider role (src/provider/): hold mail for other users in `dbPath` (its own SQLite
   * file) and serve the mailbox protocol at /mailbox/v1 on our onion. Omit for none. With a
   * `directory` (a read-only client of the provider directory, closed by its owner), the role charges
   * when this node's listing there has a price: subscriptions are checked on chain and stop being
   * served once paid-until + grace has passed (src/provider/payments.ts).
   */
  provider?: { dbPath: string; limits?: Partial<ProviderLimits>; directory?: ProviderDirectory };
  /** The mail bridge (SMTP and IMAP on 127.0.0.1, src/bridge/); omit for none. Ports: 0 = any free port. */
  bridge?: { smtpPort: number; imapPort: number; password: string };
  /**
   * The longest a dial may take, ms: the timeout for a peer never reached, and one attempt's dial
   * budget. A peer reached before gets a shorter, adaptive timeout (src/pipeline/dial-policy.ts).
   * Default 30 s.
   */
  dialTimeoutMs?: number;
  /** DELIVER → RECEIPT deadline, ms. Default 60 s. */
  deliverTimeoutMs?: number;
  /** How long the reachability self-check keeps trying, ms. Default 120 s. */
  selfCheckTimeoutMs?: number;
  /** How often contacts with a pending key change are looked up again, ms. Default 10 min. */
  keyRecheckMs?: number;
  /** How often the node fetches from its mailbox providers (besides at start), ms. Default 5 min. */
  mailboxFetchMs?: number;
  /**
   * Measuring providers and replacing ours that lose mail (provider-scores.ts, mailbox-review.ts):
   * how often to review (default 10 min), when an unreachable one of ours is replaced (2 days), how
   * often fetch outcomes count (1 h), the score line (0.6), candidates besides the user's spares
   * and the user's filters for them.
   */
  mailboxReview?: Pick<MailboxReviewOptions, 'intervalMs' | 'unreachableReplaceMs' | 'candidates' | 'policy'>
    & Pick<ProviderScoresOptions, 'fetchSampleMs' | 'minScore' | 'reputation'>;
  /**
   * The end-to-end encryption (src/pipeline/envelopes.ts). Default: sessions (PROTOCOL.md,
   * src/pipeline/session-envelopes.ts); tests wrap or replace it.
   */
  envelopes?: (ctx: { identity: Identity; store: Store; clock: Clock; random: RandomBytes; limits: Limits; logger: Logger }) => Envelopes;
  /** Fault injection for tests: runs after an inbound batch committed, before its receipts go out. */
  hooks?: { afterInboundCommit?: (ids: string[]) => void };
  /**
   * Our registry name, claimed in the HELLO of connections we dial so that recipients who do not
   * know us can show it (they verify it by looking it up). Omit when not registered.
   */
  registryName?: string;
  /**
   * The command that rotates this identity's keys (`onionpost keys rotate …`) as the user types it
   * on this machine, for the web UI to show: it runs with the node stopped (src/cli/keys-command.ts).
   */
  rotateKeysCommand?: string;
}

export interface NodeStatus {
  onion: string;
  identityKey: string;
  encryptionKey: string;
  /** Present when the node runs hidden: the onion only its contacts are told (`onion` is never published). */
  hidden?: { directOnion: string };
  reachable: boolean;
  tor: NetworkStatus;
  counts: Record<string, number>;
  peers: { connected: number };
  listener: { port: number } | null;
  api: { url: string } | null;
  /** What this node holds as a mailbox provider, when it is one. */
  provider: ProviderStats | null;
  /** The mailbox providers this user subscribed at (`mailboxes add`), in the order added. */
  mailboxes: MailboxView[];
  /** Contacts' key changes and registry problems; mailbox providers below the line, or whose payment ends soon or has ended (`provider`). */
  warnings: { type: string; alias?: string; provider?: string; message: string }[];
  /** The peer listener's admission counters (src/transport/guard.ts) and the DELIVER budget's (admission.ts). */
  inbound: { connections: GuardStats | null; delivers: AdmissionStats | null };
  /** Key rotation: the command to run with the node stopped (null: not known here), and whether contacts can follow through the registry. */
  rotateKeys: { command: string | null; registryName: string | null };
}

/** Network states in which our onion cannot answer (our tor exited or is stopping). */
const ONION_GONE: ReadonlySet<string> = new Set(['restarting', 'stopped']);

/** What start() builds; all or nothing. */
interface Running {
  store: Store;
  contacts: ContactPolicy;
  envelopes: Envelopes;
  connections: Connections;
  pipeline: MessagePipeline;
  courier: Courier;
  review: MailboxReview;
  contactQueues: ContactQueues;
  firstContact: FirstContact;
}

export class OnionpostNode {
  readonly #identity: Identity;
  readonly events = new EventBus();
  readonly handlers: Readonly<Record<string, Handler>>;
  readonly #o: NodeOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #random: RandomBytes;
  readonly #limits: Limits;
  readonly #reachability: Reachability;
  readonly #mailboxes: UserMailboxes;
  readonly #scores: ProviderScores;
  readonly #readReceipts: ReadReceipts;
  readonly #unsubscribeReads: () => void;
  readonly #listings: ReturnType<typeof providerListings>;
  #run: Partial<Running> = {};
  #listener: WsListener | undefined;
  #admission: InboundAdmission | undefined;
  #outbox: Outbox | undefined;
  #api: ApiServer | undefined;
  #bridge: MailBridge | undefined;
  #provider: { store: ProviderStore; service: MailboxService } | undefined;
  #recheckTimer: TimerHandle | undefined;
  readonly #closeController = new AbortController();
  #started = false;
  #closing: Promise<void> | undefined;
  #unsubscribeNetwork: (() => void) | undefined;

  constructor(opts: NodeOptions) {
    this.#o = opts;
    this.#identity = opts.identity;
    this.#log = opts.logger.child({ layer: 'node' });
    this.#clock = opts.clock ?? systemClock;
    this.#random = opts.random ?? secureRandomBytes;
    this.#limits = resolveLimits(opts.limits);
    this.#reachability = new Reachability({
      probe: (signal) => this.#probeOwnOnion(signal), clock: this.#clock, logger: this.#log, timeoutMs: opts.selfCheckTimeoutMs ?? 120_000,
      onChange: (reachable) => this.events.emit({ type: 'tor.status', ...this.#o.network.status(), reachable }),
    });
    const r = opts.mailboxReview ?? {};
    this.#scores = new ProviderScores({
      store: () => this.store, clock: this.#clock, logger: this.#log, signal: this.#closeController.signal,
      ...(r.fetchSampleMs !== undefined ? { fetchSampleMs: r.fetchSampleMs } : {}), ...(r.minScore !== undefined ? { minScore: r.minScore } : {}),
      ...(r.reputation ? { reputation: r.reputation } : {}),
    });
    this.#mailboxes = new UserMailboxes({
      identity: opts.identity, store: () => this.store, network: opts.network, clock: this.#clock, limits: this.#limits,
      logger: this.#log, emit: (ev) => this.events.emit(ev), signal: this.#closeController.signal, ...(opts.dialTimeoutMs !== undefined ? { dialTimeoutMs: opts.dialTimeoutMs } : {}),
      // Contacts online now learn our providers at once; the others with our next mail to them.
      onChange: () => {
        this.#run.courier?.forgetRemoved();
        // A provider just added is fetched (and watched) now, not at the next round minutes away.
        void this.#run.courier?.fetch().catch(() => {});
        this.#run.contactQueues?.soon();
        void this.#run.pipeline?.announceMailboxes(this.#closeController.signal).catch(() => {});
      },
      reputation: (onion) => this.#scores.reputation(onion),
      keepBundle: async (client, o) => this.#run.firstContact?.keep(client, { signal: o.signal ?? this.#closeController.signal, timeoutMs: o.timeoutMs ?? 60_000 }, true),
    });
    this.#readReceipts = new ReadReceipts({
      store: () => this.store, clock: this.#clock, logger: this.#log,
      send: (peer, onion, ids) => this.#running('pipeline').sendReadReceipt(peer, onion, ids),
    });
    const listings = providerListings({
      directory: opts.directory, mailboxes: () => this.#mailboxes.list(), reputation: (onion) => this.#scores.reputation(onion),
      policy: () => {
        const review = this.#running('review');
        return { stored: review.policy(), judgeBy: review.choicePolicy() };
      },
      coolingUntil: (onion) => this.#run.courier?.coolingUntil(onion), tagKey: subscriberTagKey(opts.identity), now: () => this.#clock.now(),
    });
    this.#listings = listings;
    // A directory read ends when the node closes, or after its deadline.
    const readSignal = () => AbortSignal.any([this.#closeController.signal, AbortSignal.timeout(DIRECTORY_READ_TIMEOUT_MS)]);
    this.handlers = createHandlers({
      providers: {
        list: (q) => {
          this.#running('store');
          return listings.list(q, readSignal());
        },
        // The listing, and everything this node measured of it with its newest events (as `mailboxes.scores <onion>`).
        show: async (who) => {
          this.#running('store');
          const l = await listings.show(who, readSignal());
          return { ...l, measured: this.providerScores(l.onion)[0] };
        },
      },
      mailboxes: {
        add: (onion) => this.#mailboxes.add(onion),
        list: () => this.#mailboxes.list(),
        remove: (onion) => this.#mailboxes.remove(onion),
        spares: () => this.#running('review').spares(),
        addSpare: (onion) => this.#running('review').addSpare(onion),
        removeSpare: (onion) => this.#running('review').removeSpare(onion),
        trustLists: () => this.#running('review').trustLists(),
        addTrustList: (text, signer) => {
          // The signer by identity key, or by a contact's alias (its pinned key).
          const key = /^[0-9a-f]{64}$/.test(signer.trim()) ? signer.trim() : this.store.getContact(signer.trim())?.identityKey;
          if (!key) throw new MailboxesError('NOT_FOUND', `"${signer}" is neither an identity key (64 hex) nor one of your contacts`);
          return this.#running('review').addTrustList(text, key);
        },
        removeTrustList: (name) => this.#running('review').removeTrustList(name),
        policy: () => this.#running('review').policy(),
        setPolicy: (patch) => this.#running('review').setPolicy(patch),
        scores: (onion) => this.providerScores(onion),
        review: () => this.reviewMailboxes(),
      },
      address: () => ({ onion: this.identity.onion, identityKey: toHex(this.identity.identityKey), encryptionKey: toHex(this.identity.encryptionKey) }),
      status: () => this.status(),
      store: () => this.store,
      send: (p) => this.send(p as unknown as SendParams),
      addContact: async (alias, address) => {
        const c = await this.#running('contacts').add(alias, address);
        this.#run.contactQueues?.soon();
        return c;
      },
      approveKeyChange: (alias) => this.approveKeyChange(alias),
      lookup: (name) => this.#running('contacts').lookup(name),
      bridgeSettings: () => {
        const b = this.#bridge;
        if (!b || !this.#o.bridge) throw new NodeError('BRIDGE_OFF', 'the mail bridge is off (start the node without --no-bridge)');
        return { smtp: b.smtp, imap: b.imap, user: b.user, password: this.#o.bridge.password, address: b.user };
      },
      emit: (ev) => this.events.emit(ev),
      rejectKeyChange: (alias) => this.#running('contacts').rejectKeyChange(alias),
      safetyNumber: (theirKey) => {
        const digits = safetyNumber(this.identity.identityKey, fromHex(theirKey));
        return { digits, groups: formatSafetyNumber(digits).split(' ') };
      },
      retryNow: (id) => {
        // Due now: the message and, if the outbox is backing off from its peer, the peer too.
        const store = this.store;
        const now = this.#clock.now();
        const due = store.batch(() => {
          const m = store.getMessage(id);
          if (!m || !store.retryNow(id, now)) return false;
          const peer = store.peerState(m.peerIdentity);
          if (peer && peer.nextAttemptAt > now) store.setPeerState(m.peerIdentity, { failures: peer.failures, nextAttemptAt: now });
          return true;
        });
        if (due) this.#outbox?.kick();
        return due;
      },
      limits: () => ({ maxAttachments: MAX_ATTACHMENTS, capacity: MESSAGE_CAPACITY, maxNameBytes: 255 }),
      peerIdentity: (peer) => {
        const s = peer.trim();
        if (/^[0-9a-f]{64}$/.test(s)) return s;
        if (isOnionAddress(s)) return toHex(parseOnionAddress(s).identityKey);
        return this.store.getContact(s)?.identityKey ?? null;
      },
      readReceipts: this.#readReceipts,
    });
    this.#unsubscribeReads = this.events.subscribe((ev) => {
      // Reads through the API (messages.get, conversation views, markRead) may owe the sender a read receipt.
      if (ev.type === 'message.read' && ev.read === true && typeof ev.id === 'string') this.#readReceipts.read(ev.id);
      // A contact we now have a session with (mail came from it, or our first to it arrived) and have
      // not handed queues (or our direct onion) yet gets them.
      if ((ev.type === 'message.received' || (ev.type === 'message.state' && ev.state === 'delivered')) && typeof ev.id === 'string') this.#maybeHandQueues(ev.id);
    });
  }

  /** Our identity (keys and onion). */
  get identity(): Identity {
    return this.#identity;
  }

  #running<K extends keyof Running>(k: K): Running[K] {
    const v = this.#run[k];
    if (!v) throw new NodeError('NOT_STARTED', 'node not started');
    return v as Running[K];
  }

  get store(): Store {
    return this.#running('store');
  }

  /** Fetches what our mailbox providers hold for us now (also done at start and on a schedule). */
  fetchMailboxes(): Promise<void> {
    return this.#running('courier').fetch();
  }

  /**
   * Settles deposits into provider scores, replaces our providers that lose mail or cannot be
   * reached, and re-deposits what bad ones hold (mailbox-review.ts); also runs on a schedule.
   */
  reviewMailboxes() {
    return this.#running('review').review();
  }

  /** What this node measured of mailbox providers (ours and those we deposited at), best first; with `onion`, that one and its recent events. */
  providerScores(onion?: string) {
    this.#running('store');
    const ours = new Set(this.#mailboxes.onions() as string[]);
    if (onion !== undefined) {
      const o = parseOnionAddress(onion.trim()).onion;
      return [{ ...this.#scores.reputation(o), ours: ours.has(o), history: this.#scores.history(o) }];
    }
    return this.#scores.list().map((v) => ({ ...v, ours: ours.has(v.onion) }));
  }

  /** The mailbox providers this user subscribed at: add, list, remove (src/node/mailboxes.ts). */
  get mailboxes(): UserMailboxes {
    return this.#mailboxes;
  }

  get apiUrl(): string | null {
    return this.#api?.url ?? null;
  }

  /** After mail from `messageId`'s sender: if it is a contact we never handed queues, a run soon. */
  #maybeHandQueues(messageId: string): void {
    const store = this.#run.store;
    if (!store || !this.#run.contactQueues || (this.#mailboxes.onions().length === 0 && !this.#o.directOnion)) return;
    const m = store.getMessage(messageId);
    if (!m || !store.getContact(m.peerIdentity)) return;
    const untold = this.#o.directOnion ? store.contactQueues.toldOnion(m.peerIdentity) !== this.#o.directOnion : false;
    if (untold || (this.#mailboxes.onions().length > 0 && store.contactQueues.handedBody(m.peerIdentity) === null)) this.#run.contactQueues.soon();
  }

  /** The onion the node is reachable at: its identity's, or its direct onion when it runs hidden. */
  get publishedOnion(): string {
    return this.#o.directOnion ?? this.identity.onion;
  }

  /** A fresh single-use sign-in link for the web UI; null without an API. */
  loginLink(): { url: string; expiresAt: number } | null {
    return this.#api?.loginLink() ?? null;
  }

  get reachable(): boolean {
    return this.#reachability.reachable;
  }

  /** The mail bridge's addresses, or null when it is off. */
  get mailBridge(): MailBridge | null {
    return this.#bridge ?? null;
  }

  /**
   * The store remembers whose node it serves (OWN_IDENTITY_SETTING). Opened under another identity
   * key (`onionpost keys rotate` made a new one): every session we send on was agreed by the old
   * key, so each is reset (PROTOCOL.md §7.4): it still decrypts what arrives on it, and what is
   * queued under it is encrypted again in a fresh agreement (INIT) made by the new key.
   */
  #adoptIdentity(store: Store): void {
    const mine = toHex(this.identity.identityKey);
    const before = store.getSetting(OWN_IDENTITY_SETTING);
    if (before === mine) return;
    if (before !== null) {
      let reset = 0;
      store.batch(() => {
        for (const s of store.sessions.listSessions()) {
          if (!s.current) continue;
          store.sessions.resetSession(s.id);
          reset++;
        }
      });
      this.#log.info({ sessions: reset }, 'this node runs under a new identity key: sessions made by the old key reset');
    }
    store.setSetting(OWN_IDENTITY_SETTING, mine);
  }

  /** Resolves a recipient as send() would (onion, contact or registry name), without sending. */
  async resolveRecipient(to: string, signal: AbortSignal): Promise<{ onion: string; label: string | null }> {
    const r = await this.#running('pipeline').resolve(to, signal);
    return { onion: r.onion, label: r.label };
  }

  /** Opens everything in order; on failure, closes what was opened and rethrows. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    try {
      const store = openStore({ path: this.#o.dbPath, logger: this.#o.logger.child({ layer: 'store' }), clock: this.#clock });
      this.#run.store = store;
      this.#adoptIdentity(store);
      const contacts = new ContactPolicy({
        store, clock: this.#clock, logger: this.#o.logger.child({ layer: 'contacts' }), emit: (ev) => this.events.emit(ev),
        onKeyChangeCleared: (c) => this.#run.pipeline?.releaseHeld(c.previous, recipientOf(c.contact)),
        onRotated: (c) => this.#run.pipeline?.followRotation(c.previous.identityKey, recipientOf(c.contact)),
        ...(this.#o.registry ? { registry: this.#o.registry } : {}),
      });
      const ctx = {
        identity: this.identity, store, clock: this.#clock, random: this.#random, limits: this.#limits, logger: this.#o.logger.child({ layer: 'sessions' }),
        mailboxes: () => this.#mailboxes.onions(),
      };
      const envelopes = this.#o.envelopes?.(ctx) ?? new SessionEnvelopes(ctx);
      const claim = this.#o.registryName ? nameCapability(this.#o.registryName) : null;
      const connections = new Connections({
        dialer: this.#o.network, limits: this.#limits, clock: this.#clock, logger: this.#o.logger.child({ layer: 'protocol' }),
        ...(this.#o.dialTimeoutMs !== undefined ? { dialPolicy: { maxMs: this.#o.dialTimeoutMs } } : {}), ...(claim ? { capabilities: () => [claim] } : {}),
      });
      const pipeline = new MessagePipeline({
        identityKey: this.identity.identityKey, store, envelopes, recipients: contacts, connections, events: this.events,
        kick: (peer) => this.#outbox?.kick(peer), peerSeen: (peer) => this.#outbox?.peerSeen(peer), clock: this.#clock, random: this.#random, limits: this.#limits,
        logger: this.#o.logger.child({ layer: 'pipeline' }), deliverTimeoutMs: this.#o.deliverTimeoutMs ?? 60_000, signal: this.#closeController.signal,
        ...(this.#o.hooks?.afterInboundCommit ? { afterInboundCommit: this.#o.hooks.afterInboundCommit } : {}),
        depositor: { deposit: (m, signal, only) => courier.deposit(m, signal, only) },
        bundles: { fromProviders: (peer, signal) => firstContact.bundleFor(peer, signal) },
        ownMailboxesKey: () => this.#mailboxes.listKey(),
      });
      const courier = new Courier({
        identity: this.identity, store, network: this.#o.network, pipeline, clock: this.#clock, random: this.#random, limits: this.#limits,
        logger: this.#o.logger.child({ layer: 'courier' }), emit: (ev) => this.events.emit(ev), signal: this.#closeController.signal,
        checkAccount: (onion, client, opts) => this.#mailboxes.checkAccount(onion, client, opts),
        keepBundle: (_onion, client, opts) => firstContact.keep(client, opts),
        pushReceipts: async (onion, receipts, signal) => (await connections.connect(onion, signal)).pushReceipts(receipts, { signal }),
        observe: (provider, ob) => this.#scores.observe(provider, ob), usable: (provider) => this.#scores.usable(provider),
        ...(this.#o.dialTimeoutMs !== undefined ? { dialTimeoutMs: this.#o.dialTimeoutMs } : {}),
        ...(this.#o.mailboxFetchMs !== undefined ? { fetchIntervalMs: this.#o.mailboxFetchMs } : {}),
      });
      const firstContact = new FirstContact({
        identity: this.identity, store, envelopes, getBundle: (provider, key, signal) => courier.getBundle(provider, key, signal),
        logger: this.#o.logger.child({ layer: 'first-contact' }), ...(this.#o.registry ? { registry: this.#o.registry } : {}),
      });
      const review = new MailboxReview({
        store: () => store, scores: this.#scores, mailboxes: this.#mailboxes, fetchFrom: (onion) => courier.fetchFrom(onion),
        deposit: (m, signal) => courier.deposit(m, signal), clock: this.#clock, logger: this.#o.logger.child({ layer: 'mailbox-review' }),
        emit: (ev) => this.events.emit(ev), signal: this.#closeController.signal,
        ...pick(this.#o.mailboxReview ?? {}, ['intervalMs', 'unreachableReplaceMs', 'candidates', 'policy']),
        // The directory's listings, read only while the user's directory policy is on (the review asks then).
        ...(this.#o.directory && !this.#o.mailboxReview?.candidates ? {
          candidates: (policy, signal) => this.#listings.candidates(policy, AbortSignal.any([signal, AbortSignal.timeout(DIRECTORY_READ_TIMEOUT_MS)])),
        } satisfies Pick<MailboxReviewOptions, 'candidates'> : {}),
      });
      const contactQueues = new ContactQueues({
        store, providers: () => this.#mailboxes.onions(), clock: this.#clock, logger: this.#o.logger.child({ layer: 'contact-queues' }),
        create: (provider, peer, signal) => courier.createContactQueue(provider, peer, signal),
        remove: (provider, queue, signal) => courier.removeContactQueue(provider, queue, signal),
        send: (peer, onion, queues) => pipeline.sendQueueHandout(peer, onion, queues),
        directOnion: () => this.#o.directOnion ?? null,
        sendOnion: (peer, onion, direct) => pipeline.sendDirectOnion(peer, onion, direct),
        signal: this.#closeController.signal,
      });
      this.#run = { store, contacts, envelopes, connections, pipeline, courier, review, contactQueues, firstContact };
      const admission = new InboundAdmission({
        limits: this.#limits, clock: this.#clock, listener: () => this.#listener,
        senderIsContact: (id) => {
          const m = store.getMessage(id);
          return m !== null && store.getContact(m.peerIdentity) !== null;
        },
      });
      this.#admission = admission;
      const accept = (ch: MessageChannel) => {
        // DELIVERs come after HELLO, so `conn` is set (and its peer's name claim known) by then.
        const conn: PeerConnection = connections.accept(ch, {
          onDeliver: (id, env) => admission.deliver(ch, toHex(id), env.length, () => pipeline.receive(id, env, { claimedName: claimedName(conn.peerHello) })),
          onBundleRequest: () => admission.bundle(ch, () => envelopes.bundleAnswer()),
          onReceipts: (receipts) => {
            // In a socket's message handler: a store failure (disk full) is logged, never thrown there.
            try {
              pipeline.receiptsPushed(receipts);
            } catch (err) {
              this.#log.warn({ err: describeError(err) }, 'pushed receipts could not be recorded (the sender retries)');
            }
          },
          onBundlePush: (answer) => void envelopes.learnBundle?.(answer),
        });
        void conn.ready.then(() => admission.handshakeDone(ch), () => {});
        // A peer closed for what no honest one does: its circuit is refused for a while.
        void conn.closed.then((info) => {
          if (closedForMisbehaviour(info)) this.#listener?.misbehaved(ch, 'protocol');
        });
      };
      const routes = this.#o.provider ? { [MAILBOX_PATH]: this.#startProvider(this.#o.provider) } : undefined;
      this.#listener = await createWsListener({
        host: '127.0.0.1', port: 0, limits: this.#limits, logger: this.#o.logger.child({ layer: 'transport' }), clock: this.#clock, onChannel: accept,
        ...(routes ? { routes } : {}),
        proxyProtocol: this.#o.network.proxyProtocol === true,
      });
      let generation = 0;
      this.#unsubscribeNetwork = this.#o.network.onStatus((s) => {
        // Our onion is gone the moment our tor is: unreachable now, not after the next self-check.
        // lost() tells subscribers itself (a tor.status with reachable: false).
        const wasReachable = this.reachable;
        if (ONION_GONE.has(s.state)) this.#reachability.lost();
        if (!wasReachable || this.reachable) this.events.emit({ type: 'tor.status', ...s, reachable: this.reachable });
        const g = s.generation ?? 0;
        if (g > generation) {
          if (generation > 0) this.networkRecovered();
          generation = g;
        }
      });
      // Before the API, so `bridge.settings` answers as soon as the API does; mail a client submits
      // before the onion is published waits in the outbox like any other.
      if (this.#o.bridge) {
        const b = this.#o.bridge;
        this.#bridge = await createMailBridge({
          mailPort: createMailPort(this), password: b.password, smtpPort: b.smtpPort, imapPort: b.imapPort,
          logger: this.#o.logger.child({ layer: 'bridge' }), clock: this.#clock,
        });
      }
      if (this.#o.api) {
        const a = this.#o.api;
        this.#api = await createApiServer({
          port: a.port ?? 0, token: a.token, methods: API_METHODS, handlers: this.handlers, events: this.events, clock: this.#clock,
          logger: this.#o.logger.child({ layer: 'api' }), ...(a.web ? { web: a.web } : {}), ...(a.limits ? { limits: a.limits } : {}),
        });
        a.onListening?.(this.#api.url);
      }
      await this.#o.network.publish(this.publishedOnion, { port: this.#listener.port, onChannel: accept, ...(routes ? { routes } : {}) }, this.#closeController.signal);
      this.#outbox = createOutbox({
        store, clock: this.#clock, logger: this.#o.logger.child({ layer: 'outbox' }),
        deliver: (m, signal) => pipeline.attempt(m, signal),
        perPeerConcurrency: this.#o.outbox?.perPeerConcurrency ?? 32,
        maxConcurrency: this.#o.outbox?.maxConcurrency ?? 256,
        ...(this.#o.outbox?.policy ? { policy: this.#o.outbox.policy } : {}),
        onChange: (id, state, d, kind) => {
          if (isControlKind(kind)) return; // a control message's changes are shown nowhere
          // A retry of a message its recipient's providers hold: it is still "in mailbox".
          const m = state === 'queued' && d.code === 'IN_MAILBOX' ? store.getMessage(id) : null;
          if (m && m.mailboxes.length > 0) this.events.emit({ type: 'message.state', id, state: 'in_mailbox', mailboxes: m.mailboxes, ...d });
          else this.events.emit({ type: 'message.state', id, state, ...d });
        },
      });
      this.#outbox.start();
      envelopes.start();
      courier.start();
      review.start();
      contactQueues.start();
      void this.#reachability.check();
      this.#scheduleRecheck(0);
    } catch (err) {
      await this.close().catch(() => {});
      throw err;
    }
  }

  /** Opens the provider's store and service; returns what serves a /mailbox/v1 channel. */
  #startProvider(p: NonNullable<NodeOptions['provider']>): (ch: MessageChannel) => void {
    const logger = this.#o.logger.child({ layer: 'provider' });
    const store = new ProviderStore({ path: p.dbPath, logger, isEnvelopeSize: (n) => (PADDING_BUCKETS as readonly number[]).includes(n), ...(p.limits ? { limits: p.limits } : {}) });
    const payments = p.directory ? directoryPayments({ directory: p.directory, identityKey: this.identity.identityKey, clock: this.#clock }) : null;
    const service = new MailboxService({
      identity: this.identity, store, clock: this.#clock, logger, limits: { maxEnvelope: this.#limits.maxEnvelope },
      ...(payments ? { paidUntil: payments.paidUntil, priced: payments.priced } : {}),
    });
    this.#provider = { store, service };
    service.startHousekeeping();
    return (ch) => {
      service.serve(ch, { onProven: () => this.#listener?.setTrust(ch, 'proven'), onMisbehaved: () => this.#listener?.misbehaved(ch, 'mailbox') });
      // The mailbox protocol has no HELLO: its first message ends the pending handshake.
      ch.once('message', () => this.#listener?.handshakeDone(ch));
    };
  }

  /** One self-check try: dial our own onion and expect our own bundle back. */
  async #probeOwnOnion(signal: AbortSignal): Promise<void> {
    const channel = await this.#o.network.dial(this.publishedOnion, { signal, timeoutMs: 30_000, limits: this.#limits });
    const conn = new PeerConnection({ channel, role: 'client', limits: this.#limits, clock: this.#clock });
    try {
      await conn.ready;
      // Throws unless the answer is our own bundle: another service answered at our onion.
      this.#running('envelopes').checkBundleAnswer(await conn.requestBundle({ signal, timeoutMs: 30_000 }), this.identity.identityKey);
    } finally {
      await conn.close();
    }
  }

  /**
   * Looks again at every contact with a pending key change (registry contacts): one whose record
   * is back to the pinned keys, or moved on validly, has its held mail released. Runs at start and
   * every `keyRecheckMs`; callable any time.
   */
  recheckContacts(): Promise<void> {
    return this.#running('contacts').recheck(this.#closeController.signal);
  }

  #scheduleRecheck(ms: number): void {
    if (!this.#o.registry || this.#closeController.signal.aborted) return;
    this.#recheckTimer = this.#clock.setTimeout(() => {
      this.#recheckTimer = undefined;
      void this.recheckContacts()
        .catch((err: unknown) => this.#log.warn({ err: describeError(err) }, 'contact recheck failed'))
        .finally(() => this.#scheduleRecheck(this.#o.keyRecheckMs ?? 10 * 60_000));
    }, ms);
  }

  /** Queues a message; with `wait`, resolves when it reaches a final state or `waitMs` passes. */
  send(p: SendParams): Promise<SendResult> {
    return this.#running('pipeline').send(p);
  }

  /** Accepts a contact's pending key change and re-sends the mail held for the old key to the new one. */
  approveKeyChange(alias: string) {
    const { contact, previousIdentity } = this.#running('contacts').approveKeyChange(alias);
    this.#running('pipeline').resendHeld(previousIdentity, recipientOf(contact));
    return contact;
  }

  /** Test seam: drops every connection at once, as a crash would (no close handshake). */
  dropConnections(): void {
    this.#run.connections?.destroyAll();
  }

  /** Called by the Tor network after it restarted and re-published: check again, and resume the outbox. */
  networkRecovered(): void {
    this.#reachability.lost();
    this.#run.connections?.dropClients();
    this.#outbox?.kick();
    void this.#reachability.check();
  }

  status(): NodeStatus {
    const store = this.#run.store;
    return {
      onion: this.identity.onion, identityKey: toHex(this.identity.identityKey), encryptionKey: toHex(this.identity.encryptionKey),
      ...(this.#o.directOnion ? { hidden: { directOnion: this.#o.directOnion } } : {}),
      reachable: this.reachable, tor: this.#o.network.status(), counts: (store ? { ...store.counts() } : {}) as Record<string, number>,
      peers: { connected: this.#run.connections?.count ?? 0 }, listener: this.#listener ? { port: this.#listener.port } : null,
      api: this.#api ? { url: this.#api.url } : null, provider: this.#provider?.store.stats() ?? null,
      mailboxes: store ? this.#mailboxes.list() : [],
      warnings: [...this.#run.contacts?.warnings() ?? [], ...this.#run.review?.warnings() ?? [], ...store ? this.#mailboxes.warnings() : []],
      inbound: { connections: this.#listener?.stats() ?? null, delivers: this.#admission?.scheduler.stats() ?? null },
      rotateKeys: { command: this.#o.rotateKeysCommand ?? null, registryName: this.#o.registryName ?? null },
    };
  }

  /** Stops everything in reverse start order; collects errors; same promise on every call. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const errors: unknown[] = [];
      const step = async (what: string, fn: () => unknown) => {
        try {
          await fn();
        } catch (err) {
          errors.push(err);
          this.#log.warn({ err: describeError(err) }, `closing ${what} failed`);
        }
      };
      // The API first, before anything is aborted: requests already running (a send that is
      // committing) finish and are answered; only then do the layers they need go away.
      await step('api', () => this.#api?.close());
      this.#closeController.abort(new NodeError('CLOSED', 'node closed'));
      this.#reachability.close();
      this.#unsubscribeReads();
      this.#readReceipts.close();
      if (this.#recheckTimer !== undefined) this.#clock.clearTimeout(this.#recheckTimer);
      await step('bridge', () => this.#bridge?.close());
      await step('outbox', () => this.#outbox?.close());
      this.#admission?.close();
      this.#run.envelopes?.close();
      this.#run.review?.close();
      this.#run.contactQueues?.close();
      this.#run.courier?.close();
      await step('peers', () => this.#run.connections?.close());
      this.#unsubscribeNetwork?.();
      await step('network', () => this.#o.network.close());
      await step('listener', () => this.#listener?.close());
      await step('provider', () => {
        this.#provider?.service.close();
        this.#provider?.store.close();
      });
      await step('store', () => this.#run.store?.close());
      if (errors.length > 0) this.#log.warn({ count: errors.length }, 'node closed with errors');
    })();
    return this.#closing;
  }
}

/** The options among `keys` that are set (exactOptionalPropertyTypes: no `undefined` passed on). */
function pick<T extends object, K extends keyof T>(o: T, keys: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
