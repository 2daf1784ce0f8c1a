/**
 * Mailbox providers at scale (issue 12, item 5): providers of which some are bad, users who come and
 * go over simulated weeks, each with `replicas` providers chosen by the real policy (replace/rank)
 * from the real reputation scores (reputationOf) of what that user saw, exchanging mail through the
 * real protocol (MailboxClient ↔ MailboxService over createMemoryPair, real ProviderStore files).
 * Time is a ManualClock advanced one tick at a time; within a tick the phases run as the event loop
 * carries the frames, with no real waiting.
 *
 * The model, per tick (1 h by default):
 *   1. fetch      every online user whose fetch is due (on coming online, then every fetchEveryMs)
 *                 fetches each queue at each of its providers, commits (dedups by message id; a
 *                 copy of an expired message is discarded), then ACKs. A fetch session in which
 *                 any request failed counts `unreachable` for that provider, else `fetch_ok`.
 *   2. control    what a user owes each contact (end-to-end receipts naming the provider each copy
 *                 came through; loss reports) goes directly when the contact is online in the same
 *                 tick, otherwise in a control envelope deposited at both of the contact's
 *                 providers (the "through the sender's own providers" path of issue 11).
 *   3. send       online users write new mail (a Poisson rate per online hour, to a random
 *                 contact) and, for every message not yet receipted or expired, deposit it at each
 *                 provider the recipient lists that holds no signed receipt for it yet: a failed
 *                 deposit is retried with backoff until the TTL; a provider the recipient dropped
 *                 is written off ("superseded") and the message goes to the new one (re-deposit).
 *                 At the TTL an unreceipted message turns `expired` for its sender; a day later
 *                 each provider that signed for it and whose copy never reached the recipient
 *                 gets `lost` (weight 20).
 *                 Two additions the simulation showed are needed (switch them off in SimConfig to
 *                 see why): the gap rule: the recipient fetches a queue in seq order, so a receipt
 *                 through provider P for a later deposit in the same queue proves P lost the
 *                 earlier ones it signed for: `lost` at once, and the message is deposited there
 *                 again; and loss reports: when the recipient got the message through the other
 *                 provider, the sender tells it, with P's signed deposit receipt, which the
 *                 recipient verifies against its own copy (verifyDepositReceipt) and scores as
 *                 `lost` too: a recipient rarely deposits at its own providers, so without this
 *                 it cannot see that one of them drops its mail.
 *   4. review     every reviewEveryMs (or at once with fewer than `replicas`), an online user
 *                 scores every provider from its own events, asks replace() what to drop and add,
 *                 drains and removes its queues at a dropped provider if it can reach it,
 *                 subscribes and creates one queue per contact at an added one (the contact learns
 *                 the write capability through the session), and publishes the new set. Each
 *                 user's policy carries its identity key as `spread` (ProviderPolicy.spread), and
 *                 each user trusts five providers (a trust list), ranked before the directory.
 *
 * Reputation events a user records, per provider: deposit_ok, deposit_refused (a refused deposit,
 * subscribe or queue creation), unreachable (a failed dial, one per connection attempt; a failed
 * fetch session), fetch_ok, delivered (a receipt named the provider), lost (as above).
 */
import { ManualClock } from '../../src/clock.js';
import { identityFromSecrets, type Identity } from '../../src/crypto/index.js';
import { bytesEqual, toHex } from '../../src/bytes.js';
import {
  DEFAULT_POLICY, MAX_FETCH, MailboxErrorCode, ProviderError, rank, replace, reputationOf, verifyDepositReceipt,
  type DepositReceipt, type MailboxClient, type ProviderCandidate, type ProviderPolicy, type ReputationEvent, type ReputationEventKind,
} from '../../src/provider/index.js';
import { CONTROL_MAX_BYTES, controlBytes, decodePayload, encodePayload, type LossReport, type ReceiptEntry } from './payload.js';
import { BAD_SPECS, SimProvider, type ProviderKind, type ProviderSpec } from './providers.js';
import { createRng, type Rng } from './rng.js';

export const HOUR = 3600_000;
export const DAY = 24 * HOUR;

export interface SimConfig {
  seed: number;
  providers: number;
  /** Share of providers that are bad (rounded); they take BAD_SPECS in turn. */
  badFraction: number;
  users: number;
  /** Each user adds this many random others as contacts (both ways), so about twice as many each. */
  contactsPerUser: number;
  /** Length of the run; new mail is written until `days - ttlDays - 2`, then the rest drains. */
  days: number;
  /** Message TTL (the sender's; the providers keep mail 14 days). */
  ttlDays: number;
  /** New messages per hour a user is online. */
  messagesPerOnlineHour: number;
  tickMs: number;
  fetchEveryMs: number;
  reviewEveryMs: number;
  /** Senders forward verified loss reports to the recipient (see the file comment). */
  lossReports: boolean;
  /** Senders read gaps in the recipient's receipts as losses (see User.#gaps). */
  gapRule: boolean;
  /** Each user's policy carries its identity key as `spread` (ties between equal candidates broken per user). */
  spread: boolean;
  replicas: number;
  /** Where the providers' SQLite files go. */
  dir: string;
}

export const FULL_SIZE: Omit<SimConfig, 'seed' | 'dir'> = {
  providers: 20,
  badFraction: 0.3,
  users: 200,
  contactsPerUser: 3,
  days: 28,
  ttlDays: 7,
  messagesPerOnlineHour: 0.3,
  tickMs: HOUR,
  fetchEveryMs: 4 * HOUR,
  reviewEveryMs: 6 * HOUR,
  lossReports: true,
  gapRule: true,
  spread: true,
  replicas: 2,
};

const JUDGE_GRACE_MS = DAY;
const RETRY_BASE_MS = HOUR;
const RETRY_MAX_MS = 6 * HOUR;
/** Pages of one queue per fetch (bounds the loop; the rest waits for the next fetch). */
const MAX_PAGES = 16;
/** Requests one connection carries per phase: below the service's burst of 200, so an honest client is never rate-limited. */
const REQUESTS_PER_CONNECTION = 150;
/** Requests in flight on one connection: below the service's maxQueued of 32. */
const IN_FLIGHT_PER_CONNECTION = 8;
/** Attempts per request while joining a provider (subscribe, each queue). */
const JOIN_ATTEMPTS = 3;
const MAIL_SIZES: readonly { size: number; p: number }[] = [{ size: 1024, p: 0.8 }, { size: 4096, p: 0.15 }, { size: 16_384, p: 0.05 }];

type UserKind = 'always' | 'daily' | 'rare';
/** Hours online, then hours offline, drawn uniformly; a `rare` user is never away longer than 2.5 days. */
const SCHEDULES: Record<UserKind, { share: number; on: [number, number]; off: [number, number] }> = {
  always: { share: 0.2, on: [48, 144], off: [1, 6] },
  daily: { share: 0.6, on: [1, 5], off: [4, 20] },
  rare: { share: 0.2, on: [1, 3], off: [24, 60] },
};

interface Claim {
  receipt: DepositReceipt;
  delivered: boolean;
  superseded: boolean;
  /** A later deposit in the same queue came through and this one did not: the provider lost it. */
  skipped: boolean;
}

interface OutMessage {
  key: string;
  id: Uint8Array;
  to: number;
  envelope: Uint8Array;
  expiresAt: number;
  claims: Map<number, Claim>;
  retry: Map<number, { at: number; tries: number }>;
  state: 'pending' | 'delivered' | 'expired';
  /** Deposited again after a provider lost it or was dropped. */
  redeposit: boolean;
}

interface ControlEnvelope {
  to: number;
  envelope: Uint8Array;
  expiresAt: number;
  done: Set<number>;
  retry: Map<number, { at: number; tries: number }>;
}

interface QueueCaps {
  contact: number;
  queue: Uint8Array;
  read: Uint8Array;
  write: Uint8Array;
}

interface Mailbox {
  queues: Map<number, QueueCaps>;
}

interface LedgerEntry {
  from: number;
  to: number;
  createdAt: number;
  expiresAt: number;
  deliveries: number;
  deliveredAt: number | null;
  senderState: 'pending' | 'delivered' | 'expired';
  /** For a message its sender never saw delivered: what the sender knew of it at the end. */
  trace?: string;
}

interface Usage {
  user: number;
  provider: number;
  from: number;
  to: number | null;
  reason: string | null;
}

type Outcome = 'refused' | 'unreachable' | 'malformed' | 'no_capability' | 'rate_limited';

/** How a failed request counts; anything that is not a ProviderError is a bug and stops the run. */
function outcomeOf(err: unknown): Outcome {
  if (err instanceof ProviderError) {
    switch (err.code) {
      case 'REMOTE':
        if (err.remoteCode === MailboxErrorCode.RATE_LIMITED) return 'rate_limited';
        if (err.remoteCode === MailboxErrorCode.NO_CAPABILITY) return 'no_capability';
        return 'refused';
      case 'CLOSED':
      case 'TIMEOUT':
        return 'unreachable';
      case 'BAD_SIGNATURE':
      case 'MALFORMED':
        return 'malformed';
      default:
        break;
    }
  }
  throw err;
}

/** One connection, with a bound on requests in flight and per phase. */
class Conn {
  requests = 0;
  #active = 0;
  readonly #waiting: (() => void)[] = [];
  constructor(readonly client: MailboxClient) {}
  get full(): boolean {
    return this.requests >= REQUESTS_PER_CONNECTION;
  }
  async run<T>(fn: (c: MailboxClient) => Promise<T>): Promise<T> {
    this.requests++;
    // A finished request hands its slot straight to the next waiter.
    if (this.#active >= IN_FLIGHT_PER_CONNECTION) await new Promise<void>((r) => this.#waiting.push(r));
    else this.#active++;
    try {
      return await fn(this.client);
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#active--;
    }
  }
}

/** The connections one user opens in one phase; a provider that is down costs one `unreachable`. */
class Dialer {
  readonly #conns = new Map<number, Conn | null>();
  constructor(readonly user: User) {}
  open(p: number): Conn | null {
    if (this.#conns.has(p)) return this.#conns.get(p)!;
    const client = this.user.world.providers[p]!.dial(`u${this.user.idx}`);
    const conn = client ? new Conn(client) : null;
    if (!conn) this.user.note(p, 'unreachable');
    this.#conns.set(p, conn);
    return conn;
  }
  async closeAll(): Promise<void> {
    await Promise.all([...this.#conns.values()].map((c) => c?.client.close()));
  }
}

export interface SimStats {
  composed: number;
  deposits: number;
  redeposits: number;
  refused: number;
  depositUnreachable: number;
  superseded: number;
  noCapability: number;
  rateLimited: number;
  malformed: number;
  duplicateCopies: number;
  lateCopies: number;
  directControl: number;
  controlEnvelopes: number;
  controlExpired: number;
  controlDeposits: number;
  lostEvents: number;
  skips: number;
  falseSkips: number;
  reportsSent: number;
  reportsVerified: number;
  reportsUnverifiable: number;
  receiptsForGone: number;
  fetchSessions: number;
  joins: number;
  joinFailures: number;
  drops: number;
  queuesRemoved: number;
}

export class User {
  readonly identity: Identity;
  readonly rng: Rng;
  readonly kind: UserKind;
  readonly contacts: number[] = [];
  readonly trusted = new Set<number>();
  online = false;
  #nextSwitch = 0;
  #lastFetch = -Infinity;
  #lastReview = -Infinity;
  #justCameOnline = false;
  /** The providers this user lists (its bundle), with its queues there. */
  readonly mine = new Map<number, Mailbox>();
  readonly events = new Map<number, ReputationEvent[]>();
  readonly #seen = new Map<string, { expiresAt: number; envelope: Uint8Array }>();
  readonly #seenControl = new Map<string, number>();
  readonly #outbox = new Map<string, OutMessage>();
  readonly #controlOut: ControlEnvelope[] = [];
  readonly #owed = new Map<number, { receipts: ReceiptEntry[]; reports: LossReport[] }>();
  readonly policy: ProviderPolicy;

  constructor(readonly idx: number, readonly world: World) {
    this.rng = createRng(world.cfg.seed, 10_000 + idx);
    this.identity = identityFromSecrets(this.rng.bytes(32), this.rng.bytes(32));
    this.policy = world.cfg.spread ? { ...world.policy, spread: this.identity.identityKey } : world.policy;
    const r = this.rng.next();
    this.kind = r < SCHEDULES.always.share ? 'always' : r < SCHEDULES.always.share + SCHEDULES.daily.share ? 'daily' : 'rare';
  }

  get now(): number {
    return this.world.clock.now();
  }

  note(p: number, kind: ReputationEventKind): void {
    let list = this.events.get(p);
    if (!list) this.events.set(p, (list = []));
    list.push({ kind, at: this.now });
    this.world.tally(p, kind);
  }

  /** Starts the on/off schedule at a random point of it. */
  startSchedule(now: number): void {
    const s = SCHEDULES[this.kind];
    const on = (s.on[0] + s.on[1]) / 2;
    const off = (s.off[0] + s.off[1]) / 2;
    this.online = this.rng.next() < on / (on + off);
    const [a, b] = this.online ? s.on : s.off;
    this.#nextSwitch = now + this.rng.next() * this.rng.range(a, b) * HOUR;
  }

  updateOnline(now: number): void {
    const s = SCHEDULES[this.kind];
    const was = this.online;
    for (let i = 0; i < 100 && now >= this.#nextSwitch; i++) {
      this.online = !this.online;
      const [a, b] = this.online ? s.on : s.off;
      this.#nextSwitch += this.rng.range(a, b) * HOUR;
    }
    if (this.online && !was) this.#justCameOnline = true;
  }

  forceOnline(): void {
    if (!this.online) this.#justCameOnline = true;
    this.online = true;
  }

  fetchDue(now: number): boolean {
    return this.#justCameOnline || now - this.#lastFetch >= this.world.cfg.fetchEveryMs;
  }

  reviewDue(now: number): boolean {
    return this.mine.size < this.policy.replicas || now - this.#lastReview >= this.world.cfg.reviewEveryMs;
  }

  published(): number[] {
    return [...this.mine.keys()];
  }

  #owe(contact: number): { receipts: ReceiptEntry[]; reports: LossReport[] } {
    let o = this.#owed.get(contact);
    if (!o) this.#owed.set(contact, (o = { receipts: [], reports: [] }));
    return o;
  }

  // ---- 1. fetch -------------------------------------------------------------------------------

  async fetch(): Promise<void> {
    this.#lastFetch = this.now;
    this.#justCameOnline = false;
    const dialer = new Dialer(this);
    await Promise.all([...this.mine].map(([p, box]) => this.#fetchFrom(dialer, p, box)));
    await dialer.closeAll();
    this.#prune();
  }

  async #fetchFrom(dialer: Dialer, p: number, box: Mailbox): Promise<void> {
    const conn = dialer.open(p);
    if (!conn) return;
    this.world.stats.fetchSessions++;
    let failed = false;
    const fail = (err: unknown) => {
      this.world.count(outcomeOf(err));
      failed = true;
    };
    await Promise.all([...box.queues.values()].map(async (q) => {
      let after = 0;
      for (let page = 0; page < MAX_PAGES && !conn.full; page++) {
        let items;
        try {
          items = await conn.run((c) => c.fetch(q.queue, q.read, after, MAX_FETCH));
        } catch (err) {
          return fail(err);
        }
        if (items.length === 0) return;
        for (const it of items) this.#receive(it.envelope, p, q.contact);
        after = items[items.length - 1]!.seq;
        try {
          await conn.run((c) => c.ack(q.queue, q.read, items.map((i) => i.seq)));
        } catch (err) {
          return fail(err);
        }
      }
    }));
    this.note(p, failed ? 'unreachable' : 'fetch_ok');
  }

  /** Commits one fetched envelope (what a node does before it ACKs). */
  #receive(envelope: Uint8Array, via: number, contact: number): void {
    const m = decodePayload(envelope);
    if (m.from !== contact || m.to !== this.idx) throw new Error(`envelope from u${m.from} to u${m.to} found in u${this.idx}'s queue for u${contact}`);
    const key = toHex(m.id);
    const now = this.now;
    if (m.kind === 'mail') {
      const late = now >= m.expiresAt;
      if (this.#seen.has(key)) this.world.stats.duplicateCopies++;
      else if (late) this.world.stats.lateCopies++;
      else {
        this.#seen.set(key, { expiresAt: m.expiresAt, envelope });
        this.world.delivered(key, this.idx, now);
      }
      this.#owe(contact).receipts.push({ id: m.id, via, late });
      return;
    }
    if (this.#seenControl.has(key)) return;
    this.#seenControl.set(key, m.expiresAt);
    this.acceptControl(m.receipts, m.reports);
  }

  /** Receipts for our messages and loss reports about our providers, from a contact. */
  acceptControl(receipts: readonly ReceiptEntry[], reports: readonly LossReport[]): void {
    for (const r of receipts) {
      const key = toHex(r.id);
      const msg = this.#outbox.get(key);
      if (!msg) {
        this.world.stats.receiptsForGone++;
        continue;
      }
      const claim = msg.claims.get(r.via);
      if (claim?.skipped) this.world.stats.falseSkips++;
      if (claim && !claim.delivered) {
        claim.delivered = true;
        this.note(r.via, 'delivered');
      }
      if (!r.late && msg.state !== 'delivered') {
        msg.state = 'delivered';
        this.world.senderState(key, 'delivered');
      }
      if (claim && this.world.cfg.gapRule) this.#gaps(msg, r.via, claim.receipt);
    }
    for (const l of reports) {
      const seen = this.#seen.get(toHex(l.id));
      if (!seen) {
        this.world.stats.reportsUnverifiable++;
        continue;
      }
      if (!verifyDepositReceipt(this.world.providers[l.provider]!.identity.identityKey, l.receipt, seen.envelope)) {
        throw new Error(`u${this.idx}: a loss report about p${l.provider} does not verify`);
      }
      this.world.stats.reportsVerified++;
      this.note(l.provider, 'lost');
    }
  }

  /**
   * The recipient fetches a queue in seq order and receipts what it got, so a receipt through `p`
   * for a deposit with a higher seq in the same queue means our earlier deposits there that were
   * never receipted are gone: the provider signed for them and lost them. Scored `lost` at once
   * (and reported to the recipient when it has the message from elsewhere); a message still not
   * delivered is deposited there again.
   */
  #gaps(later: OutMessage, p: number, r: DepositReceipt): void {
    for (const msg of this.#outbox.values()) {
      if (msg === later || msg.to !== later.to) continue;
      const c = msg.claims.get(p);
      if (!c || c.delivered || c.skipped || c.superseded || c.receipt.seq >= r.seq || !bytesEqual(c.receipt.queue, r.queue)) continue;
      c.skipped = true;
      this.world.stats.skips++;
      this.note(p, 'lost');
      this.world.stats.lostEvents++;
      if (msg.state === 'delivered') this.#report(msg, p, c);
      else {
        msg.claims.delete(p);
        msg.retry.delete(p);
        msg.redeposit = true;
      }
    }
  }

  #report(msg: OutMessage, p: number, c: Claim): void {
    if (!this.world.cfg.lossReports) return;
    this.#owe(msg.to).reports.push({ id: msg.id, provider: p, receipt: c.receipt });
    this.world.stats.reportsSent++;
  }

  /** Forgets ids and envelopes once no copy or report about them can matter (a week past their TTL). */
  #prune(): void {
    const horizon = this.now - 7 * DAY;
    for (const [k, s] of this.#seen) if (s.expiresAt < horizon) this.#seen.delete(k);
    for (const [k, e] of this.#seenControl) if (e < horizon) this.#seenControl.delete(k);
  }

  // ---- 2. control -----------------------------------------------------------------------------

  flushControl(): void {
    const now = this.now;
    for (const [to, owed] of this.#owed) {
      const contact = this.world.users[to]!;
      if (contact.online) {
        this.world.stats.directControl++;
        contact.acceptControl(owed.receipts, owed.reports);
        continue;
      }
      let receipts = owed.receipts;
      let reports = owed.reports;
      for (let i = 0; i < 1000 && receipts.length + reports.length > 0; i++) {
        let nr = 0;
        let nl = 0;
        while (nl < reports.length && controlBytes(0, nl + 1) <= CONTROL_MAX_BYTES) nl++;
        while (nr < receipts.length && controlBytes(nr + 1, nl) <= CONTROL_MAX_BYTES) nr++;
        const envelope = encodePayload({
          kind: 'control', id: this.rng.bytes(16), from: this.idx, to, createdAt: now, expiresAt: now + this.world.ttlMs,
          receipts: receipts.slice(0, nr), reports: reports.slice(0, nl),
        });
        receipts = receipts.slice(nr);
        reports = reports.slice(nl);
        this.#controlOut.push({ to, envelope, expiresAt: now + this.world.ttlMs, done: new Set(), retry: new Map() });
        this.world.stats.controlEnvelopes++;
      }
    }
    this.#owed.clear();
  }

  // ---- 3. send --------------------------------------------------------------------------------

  /** New mail for this tick (drawn before any await, so each user's stream stays its own). */
  compose(hours: number): void {
    const now = this.now;
    let t = this.rng.exp(1 / this.world.cfg.messagesPerOnlineHour);
    for (let i = 0; i < 50 && t < hours; i++, t += this.rng.exp(1 / this.world.cfg.messagesPerOnlineHour)) {
      const to = this.rng.pick(this.contacts);
      const id = this.rng.bytes(16);
      const u = this.rng.next();
      let acc = 0;
      const size = MAIL_SIZES.find((s) => (acc += s.p) > u)?.size ?? 1024;
      const expiresAt = now + this.world.ttlMs;
      const envelope = encodePayload({ kind: 'mail', id, from: this.idx, to, createdAt: now, expiresAt }, size);
      const key = toHex(id);
      this.#outbox.set(key, { key, id, to, envelope, expiresAt, claims: new Map(), retry: new Map(), state: 'pending', redeposit: false });
      this.world.composed(key, this.idx, to, now, expiresAt);
    }
  }

  /** Expiry for the sender, and the `lost` verdict a day later. */
  #judge(): void {
    const now = this.now;
    for (const msg of this.#outbox.values()) {
      if (msg.state === 'pending' && now >= msg.expiresAt) {
        msg.state = 'expired';
        this.world.senderState(msg.key, 'expired');
      }
      if (now < msg.expiresAt + JUDGE_GRACE_MS) continue;
      const recipient = this.world.users[msg.to]!;
      if (msg.state !== 'delivered') {
        this.world.ledger.get(msg.key)!.trace = [...msg.claims].map(([p, c]) => `p${p}${c.delivered ? ' delivered' : ''}${c.superseded ? ' superseded' : ''} at ${((c.receipt.depositedAt - this.world.start) / HOUR).toFixed(0)}h`).join(', ') +
          `; retries ${[...msg.retry].map(([p, r]) => `p${p}×${r.tries}`).join(' ')}`;
      }
      for (const [p, c] of msg.claims) {
        if (c.delivered || c.superseded || c.skipped || !recipient.mine.has(p)) continue;
        this.note(p, 'lost');
        this.world.stats.lostEvents++;
        if (msg.state === 'delivered') this.#report(msg, p, c);
      }
      this.#outbox.delete(msg.key);
    }
  }

  #due(retry: Map<number, { at: number; tries: number }>, p: number): boolean {
    const r = retry.get(p);
    return !r || r.at <= this.now;
  }

  #failed(retry: Map<number, { at: number; tries: number }>, p: number): void {
    const tries = (retry.get(p)?.tries ?? 0) + 1;
    retry.set(p, { tries, at: this.now + Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (tries - 1)) });
  }

  /** What a failed deposit costs the provider in this user's eyes. */
  #depositFailed(p: number, err: unknown): void {
    const o = outcomeOf(err);
    this.world.count(o);
    if (o === 'refused') this.note(p, 'deposit_refused');
    else if (o === 'unreachable') this.note(p, 'unreachable');
    else if (o === 'malformed') this.note(p, 'malformed');
  }

  async send(): Promise<void> {
    this.#judge();
    const now = this.now;
    type Retry = Map<number, { at: number; tries: number }>;
    const work = new Map<number, { retry: Retry; run: (conn: Conn) => Promise<void> }[]>();
    const add = (p: number, retry: Retry, run: (conn: Conn) => Promise<void>) => {
      let list = work.get(p);
      if (!list) work.set(p, (list = []));
      list.push({ retry, run });
    };
    for (const msg of this.#outbox.values()) {
      if (msg.state !== 'pending') continue;
      const recipient = this.world.users[msg.to]!;
      for (const [p, c] of msg.claims) {
        if (!c.superseded && !c.delivered && !recipient.mine.has(p)) {
          c.superseded = true;
          this.world.stats.superseded++;
        }
      }
      const redeposit = msg.redeposit || [...msg.claims.values()].some((c) => c.superseded);
      for (const p of recipient.published()) {
        if (msg.claims.has(p) || !this.#due(msg.retry, p)) continue;
        add(p, msg.retry, async (conn) => {
          const caps = recipient.mine.get(p)?.queues.get(this.idx);
          if (!caps || conn.full || msg.state !== 'pending') return;
          try {
            const receipt = await conn.run((c) => c.deposit(caps.queue, caps.write, msg.envelope));
            msg.claims.set(p, { receipt, delivered: false, superseded: false, skipped: false });
            this.note(p, 'deposit_ok');
            this.world.stats.deposits++;
            if (redeposit) this.world.stats.redeposits++;
          } catch (err) {
            this.#depositFailed(p, err);
            this.#failed(msg.retry, p);
          }
        });
      }
    }
    for (let i = this.#controlOut.length - 1; i >= 0; i--) {
      const ce = this.#controlOut[i]!;
      const contact = this.world.users[ce.to]!;
      const targets = contact.published();
      if (now >= ce.expiresAt || (targets.length > 0 && targets.every((p) => ce.done.has(p)))) {
        if (now >= ce.expiresAt && !targets.some((p) => ce.done.has(p))) this.world.stats.controlExpired++;
        this.#controlOut.splice(i, 1);
        continue;
      }
      for (const p of targets) {
        if (ce.done.has(p) || !this.#due(ce.retry, p)) continue;
        add(p, ce.retry, async (conn) => {
          const caps = contact.mine.get(p)?.queues.get(this.idx);
          if (!caps || conn.full) return;
          try {
            await conn.run((c) => c.deposit(caps.queue, caps.write, ce.envelope));
            ce.done.add(p);
            this.note(p, 'deposit_ok');
            this.world.stats.controlDeposits++;
          } catch (err) {
            this.#depositFailed(p, err);
            this.#failed(ce.retry, p);
          }
        });
      }
    }
    const dialer = new Dialer(this);
    await Promise.all([...work].map(async ([p, tasks]) => {
      const conn = dialer.open(p);
      if (!conn) {
        // One failed dial: everything for that provider waits for the next step of its backoff.
        this.world.stats.depositUnreachable += tasks.length;
        for (const t of tasks) this.#failed(t.retry, p);
        return;
      }
      await Promise.all(tasks.map((t) => t.run(conn)));
    }));
    await dialer.closeAll();
  }

  // ---- 4. review ------------------------------------------------------------------------------

  candidates(): ProviderCandidate[] {
    const now = this.now;
    return this.world.providers.map((p) => {
      const r = reputationOf(this.events.get(p.idx) ?? [], now);
      return {
        onion: p.onion, source: this.trusted.has(p.idx) ? 'trusted' : 'directory', stakeSun: p.stakeSun,
        retentionDays: 14, quotaMB: 256, price: 0n, token: null, score: r.score, proven: r.proven,
      };
    });
  }

  async review(): Promise<void> {
    this.#lastReview = this.now;
    const now = this.now;
    const policy = this.policy;
    const cands = this.candidates();
    const plan = replace(this.published().map((p) => this.world.providers[p]!.onion), cands, policy, now);
    const dialer = new Dialer(this);
    for (const d of plan.drop) await this.#leave(dialer, this.world.byOnion.get(d.onion)!, d.reason);
    // The policy's picks first; when one cannot be joined now, the next in its ranking.
    const order = [...plan.add, ...rank(cands, policy, now).map((c) => c.onion).filter((o) => !plan.add.includes(o))];
    for (const onion of order) {
      if (this.mine.size >= policy.replicas) break;
      const p = this.world.byOnion.get(onion)!;
      if (!this.mine.has(p)) await this.#join(dialer, p);
    }
    await dialer.closeAll();
  }

  async #leave(dialer: Dialer, p: number, reason: string): Promise<void> {
    const box = this.mine.get(p)!;
    this.mine.delete(p);
    this.world.left(this.idx, p, reason);
    this.world.stats.drops++;
    const conn = dialer.open(p);
    if (!conn) return;
    // Take what is still there, then remove the queues (best effort: the provider is on its way out).
    await this.#fetchFrom(dialer, p, box);
    await Promise.all([...box.queues.values()].map(async (q) => {
      try {
        await conn.run((c) => c.removeQueue(this.identity, q.queue));
        this.world.stats.queuesRemoved++;
      } catch (err) {
        this.world.count(outcomeOf(err));
      }
    }));
  }

  async #attempt(p: number, conn: Conn, fn: (c: MailboxClient) => Promise<unknown>): Promise<boolean> {
    for (let i = 0; i < JOIN_ATTEMPTS; i++) {
      try {
        await conn.run(fn);
        return true;
      } catch (err) {
        this.#depositFailed(p, err);
      }
    }
    return false;
  }

  async #join(dialer: Dialer, p: number): Promise<boolean> {
    const conn = dialer.open(p);
    if (!conn) {
      this.world.stats.joinFailures++;
      return false;
    }
    const caps: QueueCaps[] = this.contacts.map((contact) => ({ contact, queue: this.rng.bytes(16), read: this.rng.bytes(32), write: this.rng.bytes(32) }));
    let ok = await this.#attempt(p, conn, (c) => c.subscribe(this.identity, null));
    if (ok) {
      const each = await Promise.all(caps.map((q) => this.#attempt(p, conn, (c) => c.createQueue(this.identity, q.queue, { write: q.write, read: q.read }))));
      ok = each.every(Boolean);
    }
    if (!ok) {
      this.world.stats.joinFailures++;
      return false;
    }
    this.mine.set(p, { queues: new Map(caps.map((q) => [q.contact, q])) });
    this.world.joined(this.idx, p);
    this.world.stats.joins++;
    return true;
  }

  /** Messages not final for their sender (the run must end with none). */
  pendingCount(): number {
    let n = 0;
    for (const m of this.#outbox.values()) if (m.state === 'pending') n++;
    return n;
  }
}

export interface ProviderFigure {
  idx: number;
  kind: ProviderKind;
  spec: ProviderSpec;
  /** Pooled over every user's events. */
  score: number;
  proven: boolean;
  counts: Record<ReputationEventKind, number>;
  signed: number;
  dropped: number;
  refused: number;
  downDays: number;
  restarts: number;
  usersAtStart: number;
  usersAtEnd: number;
  usersEver: number;
  /** Days each user kept it, for those who dropped it (sorted). */
  keptDays: number[];
  /** Users on it at the start of each day. */
  daily: number[];
  /** Drops, by the policy's reason. */
  dropReasons: Record<string, number>;
}

export interface SimResult {
  seed: number;
  cfg: SimConfig;
  messages: number;
  delivered: number;
  deliveredPct: number;
  duplicates: number;
  expired: number;
  undelivered: number;
  undeliveredNotExpired: number;
  deliveredButExpired: number;
  notFinal: number;
  meanDelayH: number;
  p50DelayH: number;
  p99DelayH: number;
  maxDelayH: number;
  replacements: number;
  replacementsOfGood: number;
  providers: ProviderFigure[];
  /** Users whose own proven scores put every bad provider below every good one (of those with both proven). */
  usersRankingRight: number;
  usersWithBothProven: number;
  stats: SimStats;
  /** One line per user still on a bad provider at the end: its schedule and what it measured. */
  stuckTraces: string[];
  /** One line per undelivered message: sender, recipient, times, claims, the recipient's providers. */
  undeliveredTraces: string[];
  pendingTimers: number;
  wallMs: number;
}

export class World {
  readonly clock: ManualClock;
  readonly providers: SimProvider[] = [];
  readonly users: User[] = [];
  readonly byOnion = new Map<string, number>();
  readonly policy: ProviderPolicy;
  readonly ttlMs: number;
  readonly start: number;
  readonly end: number;
  readonly sendUntil: number;
  readonly ledger = new Map<string, LedgerEntry>();
  readonly usage: Usage[] = [];
  readonly #openUsage = new Map<string, Usage>();
  readonly daily = new Map<number, number[]>();
  readonly tallies = new Map<number, Record<ReputationEventKind, number>>();
  readonly stats: SimStats = {
    composed: 0, deposits: 0, redeposits: 0, refused: 0, depositUnreachable: 0, superseded: 0, noCapability: 0, rateLimited: 0,
    malformed: 0, duplicateCopies: 0, lateCopies: 0, directControl: 0, controlEnvelopes: 0, controlExpired: 0, controlDeposits: 0,
    lostEvents: 0, skips: 0, falseSkips: 0, reportsSent: 0, reportsVerified: 0, reportsUnverifiable: 0, receiptsForGone: 0, fetchSessions: 0, joins: 0,
    joinFailures: 0, drops: 0, queuesRemoved: 0,
  };

  constructor(readonly cfg: SimConfig) {
    this.start = Date.UTC(2026, 0, 5);
    this.clock = new ManualClock(this.start);
    this.ttlMs = cfg.ttlDays * DAY;
    this.end = this.start + cfg.days * DAY;
    this.sendUntil = this.end - (cfg.ttlDays + 2) * DAY;
    if (this.sendUntil <= this.start) throw new RangeError(`${cfg.days} days leave no time to send with a TTL of ${cfg.ttlDays} days`);
    this.policy = { ...DEFAULT_POLICY, replicas: cfg.replicas };
    const rng = createRng(cfg.seed, 1);
    const nBad = Math.round(cfg.providers * cfg.badFraction);
    const badSlots = new Set(rng.shuffled(Array.from({ length: cfg.providers }, (_, i) => i)).slice(0, nBad));
    let b = 0;
    for (let i = 0; i < cfg.providers; i++) {
      const spec: ProviderSpec = badSlots.has(i) ? BAD_SPECS[b++ % BAD_SPECS.length]! : { kind: 'good', rate: 0 };
      const p = new SimProvider(i, spec, createRng(cfg.seed, 100 + i), this.clock, cfg.dir, { start: this.start, end: this.end });
      this.providers.push(p);
      this.byOnion.set(p.onion, i);
    }
    for (let i = 0; i < cfg.users; i++) this.users.push(new User(i, this));
    for (const u of this.users) {
      for (let k = 0; k < cfg.contactsPerUser; k++) {
        const other = rng.int(cfg.users);
        if (other === u.idx || u.contacts.includes(other)) continue;
        u.contacts.push(other);
        this.users[other]!.contacts.push(u.idx);
      }
      // A trust list the user accepted: five providers in a row, the rows shifting from user to user
      // so that every provider is on about as many lists; ranked before the directory.
      const first = (u.idx * 5 + Math.floor(u.idx / 4)) % cfg.providers;
      for (let k = 0; k < Math.min(5, cfg.providers); k++) u.trusted.add((first + k) % cfg.providers);
    }
    for (const u of this.users) if (u.contacts.length === 0) {
      const other = (u.idx + 1) % cfg.users;
      u.contacts.push(other);
      this.users[other]!.contacts.push(u.idx);
    }
  }

  tally(p: number, kind: ReputationEventKind): void {
    let t = this.tallies.get(p);
    if (!t) this.tallies.set(p, (t = { deposit_ok: 0, deposit_refused: 0, unreachable: 0, fetch_ok: 0, delivered: 0, lost: 0, malformed: 0 }));
    t[kind]++;
  }

  count(o: Outcome): void {
    if (o === 'refused') this.stats.refused++;
    else if (o === 'no_capability') this.stats.noCapability++;
    else if (o === 'rate_limited') this.stats.rateLimited++;
    else if (o === 'malformed') this.stats.malformed++;
  }

  composed(key: string, from: number, to: number, now: number, expiresAt: number): void {
    this.stats.composed++;
    this.ledger.set(key, { from, to, createdAt: now, expiresAt, deliveries: 0, deliveredAt: null, senderState: 'pending' });
  }

  delivered(key: string, user: number, now: number): void {
    const e = this.ledger.get(key);
    if (!e || e.to !== user) throw new Error(`u${user} was handed a message that is not theirs`);
    e.deliveries++;
    e.deliveredAt ??= now;
  }

  senderState(key: string, state: 'delivered' | 'expired'): void {
    const e = this.ledger.get(key)!;
    if (e.senderState !== 'delivered') e.senderState = state;
  }

  joined(user: number, p: number): void {
    const u: Usage = { user, provider: p, from: this.clock.now(), to: null, reason: null };
    this.usage.push(u);
    this.#openUsage.set(`${user}/${p}`, u);
  }

  left(user: number, p: number, reason: string): void {
    const u = this.#openUsage.get(`${user}/${p}`)!;
    this.#openUsage.delete(`${user}/${p}`);
    u.to = this.clock.now();
    u.reason = reason;
  }

  #snapshotDaily(): void {
    for (const p of this.providers) {
      let row = this.daily.get(p.idx);
      if (!row) this.daily.set(p.idx, (row = []));
      row.push(this.users.filter((u) => u.mine.has(p.idx)).length);
    }
  }

  async #phases(online: User[], compose: boolean): Promise<void> {
    const now = this.clock.now();
    await Promise.all(online.filter((u) => u.fetchDue(now)).map((u) => u.fetch()));
    for (const u of online) u.flushControl();
    if (compose && now < this.sendUntil) for (const u of online) u.compose(this.cfg.tickMs / HOUR);
    await Promise.all(online.map((u) => u.send()));
    await Promise.all(online.filter((u) => u.reviewDue(now)).map((u) => u.review()));
  }

  async run(progress?: (line: string) => void): Promise<SimResult> {
    const t0 = performance.now();
    const cfg = this.cfg;
    for (const p of this.providers) p.update(this.start, 0);
    // Day 0: everyone sets up (chooses providers by policy, subscribes, creates queues).
    for (const u of this.users) u.startSchedule(this.start);
    await Promise.all(this.users.map((u) => u.review()));
    this.#snapshotDaily();
    const ticks = Math.round((this.end - this.start) / cfg.tickMs);
    const ticksPerDay = Math.round(DAY / cfg.tickMs);
    for (let t = 1; t <= ticks; t++) {
      this.clock.advance(cfg.tickMs);
      const now = this.clock.now();
      for (const p of this.providers) p.update(now, cfg.tickMs);
      for (const u of this.users) u.updateOnline(now);
      await this.#phases(this.users.filter((u) => u.online), true);
      if (t % ticksPerDay === 0) {
        this.#snapshotDaily();
        progress?.(`day ${t / ticksPerDay}: ${this.stats.composed} messages, ${[...this.ledger.values()].filter((e) => e.deliveries > 0).length} delivered, ${(performance.now() - t0) / 1000 | 0} s`);
      }
    }
    // The end: everyone opens their node once more, so each sender sees its final states.
    for (let i = 0; i < 2; i++) {
      this.clock.advance(cfg.tickMs);
      for (const p of this.providers) p.update(this.clock.now(), cfg.tickMs);
      for (const u of this.users) u.forceOnline();
      await this.#phases(this.users, false);
    }
    const result = this.#figures(performance.now() - t0);
    for (const p of this.providers) p.close();
    return result;
  }

  #figures(wallMs: number): SimResult {
    const now = this.clock.now();
    const entries = [...this.ledger.values()];
    const delivered = entries.filter((e) => e.deliveries > 0);
    const delays = delivered.map((e) => (e.deliveredAt! - e.createdAt) / HOUR).sort((a, b) => a - b);
    const q = (f: number) => (delays.length ? delays[Math.min(delays.length - 1, Math.floor(f * delays.length))]! : 0);
    const pooled = (p: number) => reputationOf(this.users.flatMap((u) => u.events.get(p) ?? []), now);
    const providers: ProviderFigure[] = this.providers.map((p) => {
      const r = pooled(p.idx);
      const uses = this.usage.filter((u) => u.provider === p.idx);
      const daily = this.daily.get(p.idx) ?? [];
      const dropReasons: Record<string, number> = {};
      for (const u of uses) if (u.reason) dropReasons[u.reason.replace(/[0-9.]+ is/, 'x is')] = (dropReasons[u.reason.replace(/[0-9.]+ is/, 'x is')] ?? 0) + 1;
      return {
        idx: p.idx, kind: p.kind, spec: p.spec, score: r.score, proven: r.proven, counts: r.counts,
        signed: p.counters.signed, dropped: p.counters.dropped, refused: p.counters.refused,
        downDays: p.counters.downMs / DAY, restarts: p.counters.restarts,
        usersAtStart: daily[0] ?? 0, usersAtEnd: this.users.filter((u) => u.mine.has(p.idx)).length,
        usersEver: new Set(uses.map((u) => u.user)).size,
        keptDays: uses.filter((u) => u.to !== null).map((u) => (u.to! - u.from) / DAY).sort((a, b) => a - b),
        daily, dropReasons,
      };
    });
    const isBad = (p: number) => this.providers[p]!.kind !== 'good';
    let right = 0;
    let both = 0;
    for (const u of this.users) {
      const proven = this.providers.map((p) => ({ p: p.idx, r: reputationOf(u.events.get(p.idx) ?? [], now) })).filter((x) => x.r.proven);
      const good = proven.filter((x) => !isBad(x.p)).map((x) => x.r.score);
      const bad = proven.filter((x) => isBad(x.p)).map((x) => x.r.score);
      if (good.length === 0 || bad.length === 0) continue;
      both++;
      if (Math.max(...bad) < Math.min(...good)) right++;
    }
    const drops = this.usage.filter((u) => u.to !== null);
    return {
      seed: this.cfg.seed, cfg: this.cfg,
      messages: entries.length,
      delivered: delivered.length,
      deliveredPct: entries.length ? (100 * delivered.length) / entries.length : 100,
      duplicates: entries.reduce((n, e) => n + Math.max(0, e.deliveries - 1), 0),
      expired: entries.filter((e) => e.senderState === 'expired').length,
      undelivered: entries.length - delivered.length,
      undeliveredNotExpired: entries.filter((e) => e.deliveries === 0 && e.senderState !== 'expired').length,
      deliveredButExpired: entries.filter((e) => e.deliveries > 0 && e.senderState === 'expired').length,
      notFinal: entries.filter((e) => e.senderState === 'pending').length + this.users.reduce((n, u) => n + u.pendingCount(), 0),
      meanDelayH: delays.length ? delays.reduce((a, b) => a + b, 0) / delays.length : 0,
      p50DelayH: q(0.5), p99DelayH: q(0.99), maxDelayH: delays.length ? delays[delays.length - 1]! : 0,
      replacements: drops.length,
      replacementsOfGood: drops.filter((u) => !isBad(u.provider)).length,
      providers, usersRankingRight: right, usersWithBothProven: both,
      stats: this.stats, pendingTimers: this.clock.pending, wallMs,
      stuckTraces: this.users.flatMap((u) => u.published().filter((p) => isBad(p)).map((p) => {
        const r = reputationOf(u.events.get(p) ?? [], now);
        return `u${u.idx} (${u.kind}) on p${p} (${this.providers[p]!.kind}): score ${r.score.toFixed(2)} ${r.proven ? 'proven' : 'unproven'} good ${r.good.toFixed(1)} bad ${r.bad.toFixed(1)} ${JSON.stringify(r.counts)}`;
      })),
      undeliveredTraces: entries.filter((e) => e.deliveries === 0).map((e) => {
        const h = (t: number | null) => (t === null ? 'end' : `${((t - this.start) / HOUR).toFixed(0)}h`);
        const used = this.usage.filter((u) => u.user === e.to).map((u) => `p${u.provider}(${this.providers[u.provider]!.kind}) ${h(u.from)}-${h(u.to)}`).join(', ');
        return `u${e.from}->u${e.to} (${this.users[e.to]!.kind}) created ${h(e.createdAt)}: ${e.trace ?? 'no trace'}; recipient used ${used}`;
      }),
    };
  }
}

export function runSimulation(cfg: SimConfig, progress?: (line: string) => void): Promise<SimResult> {
  return new World(cfg).run(progress);
}

const f2 = (n: number) => n.toFixed(2);
const pct = (xs: number[], f: number) => (xs.length ? xs[Math.min(xs.length - 1, Math.floor(f * xs.length))]! : NaN);

function describe(p: ProviderFigure): string {
  if (p.kind === 'dropper') return `dropper ${Math.round(p.spec.rate * 100)}%`;
  if (p.kind === 'refuser') return `refuser ${Math.round(p.spec.rate * 100)}%`;
  if (p.kind === 'offline') return `offline ${p.downDays.toFixed(1)} d`;
  return 'good';
}

/** The figures, as lines a person reads. */
export function formatFigures(r: SimResult): string[] {
  const s = r.stats;
  const good = r.providers.filter((p) => p.kind === 'good').map((p) => p.score).sort((a, b) => a - b);
  const lines = [
    `seed ${r.seed} (ONIONPOST_SIM_SEED=${r.seed} reproduces it): ${r.cfg.providers} providers (${r.providers.filter((p) => p.kind !== 'good').length} bad), ${r.cfg.users} users, ${r.cfg.days} simulated days, tick ${r.cfg.tickMs / 60_000} min, TTL ${r.cfg.ttlDays} d, replication ${r.cfg.replicas}, loss reports ${r.cfg.lossReports ? 'on' : 'off'}, gap rule ${r.cfg.gapRule ? 'on' : 'off'}, spread ${r.cfg.spread ? 'on' : 'off'}`,
    `messages ${r.messages}: delivered ${r.delivered} (${r.deliveredPct.toFixed(3)} %), duplicates delivered ${r.duplicates}, expired at sender ${r.expired} (undelivered ${r.undelivered}, of which not shown expired ${r.undeliveredNotExpired}; delivered but receipt never back ${r.deliveredButExpired})`,
    `delivery delay (simulated): mean ${f2(r.meanDelayH)} h, p50 ${f2(r.p50DelayH)} h, p99 ${f2(r.p99DelayH)} h, max ${f2(r.maxDelayH)} h`,
    `deposits ${s.deposits} (re-deposits after a provider change ${s.redeposits}), refused ${s.refused}, unreachable ${s.depositUnreachable}; copies deduped ${s.duplicateCopies}, late copies discarded ${s.lateCopies}; rate-limited ${s.rateLimited}, no-capability ${s.noCapability}`,
    `receipts: direct ${s.directControl}, via providers ${s.controlEnvelopes} envelopes (${s.controlDeposits} deposits, ${s.controlExpired} never deposited); lost verdicts ${s.lostEvents} (of them from gaps ${s.skips}, later contradicted ${s.falseSkips}), loss reports sent ${s.reportsSent}, verified by recipient ${s.reportsVerified}`,
    `replacements ${r.replacements} (of good providers ${r.replacementsOfGood}); joins ${s.joins}, failed joins ${s.joinFailures}`,
    `scores (pooled over all users): good min ${f2(good[0] ?? NaN)} median ${f2(pct(good, 0.5))} max ${f2(good[good.length - 1] ?? NaN)}; users whose own proven scores put every bad provider below every good one: ${r.usersRankingRight}/${r.usersWithBothProven}`,
  ];
  const bad = r.providers.filter((p) => p.kind !== 'good');
  const onBad = (day: number) => bad.reduce((n, p) => n + (p.daily[Math.min(day, p.daily.length - 1)] ?? 0), 0);
  const days = Array.from({ length: Math.floor(r.cfg.days / 7) + 1 }, (_, i) => i * 7);
  lines.push(`users on bad providers: ${days.map((d) => `day ${d} ${onBad(d)}`).join(', ')}, end ${bad.reduce((n, p) => n + p.usersAtEnd, 0)} (${r.stuckTraces.filter((t) => t.includes('unproven')).length} of them too rarely online to prove it); median days a bad provider was kept before being dropped ${f2(pct(bad.flatMap((p) => p.keptDays).sort((a, b) => a - b), 0.5))}`);
  for (const p of bad) {
    const kept = p.keptDays;
    lines.push(
      `  p${String(p.idx).padStart(2, '0')} ${describe(p).padEnd(14)} score ${f2(p.score)}  users start ${p.usersAtStart} ever ${p.usersEver} end ${p.usersAtEnd}; kept median ${f2(pct(kept, 0.5))} d, max ${f2(kept[kept.length - 1] ?? NaN)} d; ` +
      `lost ${p.counts.lost} refused ${p.counts.deposit_refused} unreachable ${p.counts.unreachable}; signed ${p.signed} dropped ${p.dropped} refused-by-it ${p.refused}; users per day ${p.daily.join(' ')}`,
    );
  }
  lines.push(`wall time ${(r.wallMs / 1000).toFixed(1)} s`);
  return lines;
}
