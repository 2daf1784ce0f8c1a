/**
 * The simulation's mailbox providers: each one the real MailboxService over a real ProviderStore
 * file, reached through createMemoryPair. The bad ones are the real code with a wrapper, never a
 * re-implementation:
 *
 *   dropper  signs for a deposit (the real service commits it and signs the receipt), then deletes
 *            it behind the store's back with its own SQLite connection: "held but never delivered".
 *   offline  goes down for days at a time (its store closed, its connections refused) and comes
 *            back with what it held (the store reopened from its file).
 *   refuser  answers a random share of all requests with a retryable ERROR (BUSY or INTERNAL).
 *   good     does its job; now and then down for an hour or a few (maintenance, a Tor hiccup).
 */
import Database, { type Database as Db, type Statement } from 'better-sqlite3';
import { join } from 'node:path';
import type { ManualClock } from '../../src/clock.js';
import { identityFromSecrets, type Identity } from '../../src/crypto/index.js';
import { silentLogger } from '../../src/log.js';
import {
  MailboxClient, MailboxErrorCode, MailboxService, ProviderStore, type MailboxAnswer, type MailboxRequest, type MailboxServiceOptions,
} from '../../src/provider/index.js';
import { createMemoryPair } from '../../src/transport/index.js';
import { isSimEnvelopeSize } from './payload.js';
import type { Rng } from './rng.js';

export type ProviderKind = 'good' | 'dropper' | 'offline' | 'refuser';

export interface ProviderSpec {
  kind: ProviderKind;
  /** dropper: share of signed deposits deleted; refuser: share of requests refused. */
  rate: number;
  /** offline: [min, max] days up, then [min, max] days down, alternating. */
  upDays?: [number, number];
  downDays?: [number, number];
}

/** The bad behaviours, in the order bad providers are assigned them (30 % of 20 = 6: two of each kind). */
export const BAD_SPECS: readonly ProviderSpec[] = [
  { kind: 'dropper', rate: 0.6 },
  { kind: 'offline', rate: 0, upDays: [1, 3], downDays: [1, 4] },
  { kind: 'refuser', rate: 0.6 },
  { kind: 'dropper', rate: 0.25 },
  { kind: 'offline', rate: 0, upDays: [2, 6], downDays: [2, 5] },
  { kind: 'refuser', rate: 0.3 },
];

export const MAX_ENVELOPE = 262_144;
const HOUR = 3600_000;
const DAY = 24 * HOUR;

export interface ProviderCounters {
  /** Deposits the service signed for. */
  signed: number;
  /** Of those, deleted afterwards (dropper). */
  dropped: number;
  /** Requests refused at random (refuser). */
  refused: number;
  /** Connections refused while down. */
  refusedDials: number;
  dials: number;
  restarts: number;
  downMs: number;
}

/**
 * The real service with two hooks around each request: `before` may answer in its place (a
 * refusal), `after` sees what it answered (a dropper deletes what it just signed for).
 */
class HookedService extends MailboxService {
  readonly #before: (req: MailboxRequest) => MailboxAnswer | null;
  readonly #after: (req: MailboxRequest, a: MailboxAnswer) => void;
  constructor(o: MailboxServiceOptions, hooks: { before?: (req: MailboxRequest) => MailboxAnswer | null; after: (req: MailboxRequest, a: MailboxAnswer) => void }) {
    super(o);
    this.#before = hooks.before ?? (() => null);
    this.#after = hooks.after;
  }
  override async handle(req: MailboxRequest): Promise<MailboxAnswer> {
    const early = this.#before(req);
    if (early) return early;
    const a = await super.handle(req);
    this.#after(req, a);
    return a;
  }
}

export class SimProvider {
  readonly identity: Identity;
  readonly onion: string;
  readonly stakeSun: bigint;
  readonly path: string;
  readonly counters: ProviderCounters = { signed: 0, dropped: 0, refused: 0, refusedDials: 0, dials: 0, restarts: 0, downMs: 0 };
  /** Down intervals [from, to), sorted, over the whole run. */
  readonly outages: { from: number; to: number }[] = [];
  #store: ProviderStore | null = null;
  #service: MailboxService | null = null;
  #raw: { db: Db; del: Statement; use: Statement } | null = null;
  #up = false;
  #started = false;

  constructor(
    readonly idx: number,
    readonly spec: ProviderSpec,
    readonly rng: Rng,
    readonly clock: ManualClock,
    dir: string,
    span: { start: number; end: number },
  ) {
    this.identity = identityFromSecrets(rng.bytes(32), rng.bytes(32));
    this.onion = this.identity.onion;
    this.stakeSun = BigInt(1 + rng.int(1000)) * 1_000_000n;
    this.path = join(dir, `provider-${idx}.db`);
    this.#planOutages(span);
  }

  get kind(): ProviderKind {
    return this.spec.kind;
  }

  get up(): boolean {
    return this.#up;
  }

  #planOutages({ start, end }: { start: number; end: number }): void {
    const r = this.rng;
    if (this.spec.kind === 'offline') {
      const [u0, u1] = this.spec.upDays!;
      const [d0, d1] = this.spec.downDays!;
      // Starts up (part-way into an up stretch), so that it is offered and chosen before it fails.
      let t = start + r.range(0.3, 1) * r.range(u0, u1) * DAY;
      for (let i = 0; i < 1000 && t < end; i++) {
        const to = t + r.range(d0, d1) * DAY;
        this.outages.push({ from: t, to });
        t = to + r.range(u0, u1) * DAY;
      }
      return;
    }
    // Good and other bad providers: a short outage every ten days or so.
    let t = start + r.exp(10 * DAY);
    for (let i = 0; i < 1000 && t < end; i++) {
      const to = t + r.range(1, 4) * HOUR;
      this.outages.push({ from: t, to });
      t = to + r.exp(10 * DAY);
    }
  }

  #isDown(now: number): boolean {
    return this.outages.some((o) => o.from <= now && now < o.to);
  }

  /** Brings the provider up or down as its schedule says at `now` (a restart reopens its store file). */
  update(now: number, tickMs: number): void {
    const down = this.#isDown(now);
    if (down) this.counters.downMs += tickMs;
    if (down && this.#up) this.#stop();
    else if (!down && !this.#up) this.#start();
  }

  #start(): void {
    if (this.#store) throw new Error('started twice');
    const store = new ProviderStore({ path: this.path, logger: silentLogger(), isEnvelopeSize: isSimEnvelopeSize });
    const o: MailboxServiceOptions = { identity: this.identity, store, clock: this.clock, logger: silentLogger(), limits: { maxEnvelope: MAX_ENVELOPE } };
    const rate = this.spec.rate;
    const signed = (req: MailboxRequest, a: MailboxAnswer): boolean => {
      const ok = req.type === 'DEPOSIT' && a.type === 'DEPOSITED';
      if (ok) this.counters.signed++;
      return ok;
    };
    let service: MailboxService;
    if (this.spec.kind === 'dropper') {
      const raw = (this.#raw ??= this.#openRaw());
      service = new HookedService(o, {
        after: (req, a) => {
          if (!signed(req, a) || req.type !== 'DEPOSIT' || a.type !== 'DEPOSITED' || this.rng.next() >= rate) return;
          const gone = raw.del.get(req.queue, a.seq) as { n: number } | undefined;
          if (gone) {
            raw.use.run(gone.n, req.queue);
            this.counters.dropped++;
          }
        },
      });
    } else if (this.spec.kind === 'refuser') {
      service = new HookedService(o, {
        before: () => {
          if (this.rng.next() >= rate) return null;
          this.counters.refused++;
          const code = this.rng.next() < 0.5 ? MailboxErrorCode.BUSY : MailboxErrorCode.INTERNAL;
          return { type: 'ERROR', code, retryable: true, reason: 'refused (simulated)' };
        },
        after: signed,
      });
    } else {
      service = new HookedService(o, { after: signed });
    }
    if (this.#started) this.counters.restarts++;
    this.#started = true;
    this.#store = store;
    this.#service = service;
    this.#up = true;
  }

  /** A second connection to the provider's own file: how a dropper deletes what it signed for. */
  #openRaw(): { db: Db; del: Statement; use: Statement } {
    const db = new Database(this.path);
    db.pragma('busy_timeout = 5000');
    return {
      db,
      del: db.prepare('DELETE FROM held WHERE queue_id = ? AND seq = ? RETURNING length(envelope) AS n'),
      use: db.prepare('UPDATE accounts SET used_bytes = used_bytes - ? WHERE id = (SELECT account_id FROM queues WHERE id = ?)'),
    };
  }

  #stop(): void {
    this.#service?.close();
    this.#store?.close();
    this.#service = null;
    this.#store = null;
    this.#up = false;
  }

  /** A connection to the provider's `/mailbox/v1`, or null when it is down (Tor: introduction failed). */
  dial(from: string): MailboxClient | null {
    if (!this.#up || !this.#service) {
      this.counters.refusedDials++;
      return null;
    }
    this.counters.dials++;
    const [a, b] = createMemoryPair({ clock: this.clock, name: `${from}->p${this.idx}` });
    this.#service.serve(b);
    return new MailboxClient({ channel: a, providerKey: this.identity.identityKey, clock: this.clock, maxEnvelope: MAX_ENVELOPE });
  }

  /** Held envelopes and users, from the store (opened for the question if the provider is down). */
  stats(): { users: number; queues: number; held: number } {
    if (this.#store) return this.#store.stats();
    const s = new ProviderStore({ path: this.path, logger: silentLogger(), isEnvelopeSize: isSimEnvelopeSize });
    try {
      return s.stats();
    } finally {
      s.close();
    }
  }

  close(): void {
    this.#stop();
    this.#raw?.db.close();
    this.#raw = null;
  }
}
