/**
 * Acting on measured reputation (issue 12, item 4; DESIGN §10): replacing our own mailbox providers
 * that lose mail or cannot be reached, and moving mail we left at a provider scored bad.
 *
 *   review():  settle deposits (provider-scores.ts: delivered / lost)
 *              → judge our providers with src/provider/policy.ts: one proven below the line, or one
 *                every fetch from which failed for `unreachableReplaceMs`, is to go
 *              → for each, the next best candidate by policy (rank()): our spares (`mailboxes spare`,
 *                named by the user), the providers on trust lists the user accepted (signed by
 *                someone the user named, src/provider/trust-list.ts; re-checked at each review, so
 *                an expired list drops out), then, with the user's directory policy on
 *                (`mailboxes policy --directory on`, mailbox-policy.ts), what `candidates` offers (the
 *                directory's listings that pass its filters, priced ones only once paid);
 *                subscribe there (mailboxes.add) → one last fetch from the bad one → remove it
 *                (our bundle lists the new set from the next signature on) → event
 *                `mailbox.replaced` and a status warning for a week
 *              → none to be had: keep it, warn (status warning, event `mailbox.warning` once),
 *                naming priced listings that fit the policy but are unpaid (`payable`)
 *              → fill up (directory policy on): fewer than `target` providers → subscribe at the
 *                best eligible directory listings until there are
 *              → re-deposit: a queued message held at a provider now scored bad, or one its
 *                recipient no longer lists, is left at the recipient's other providers
 *                (courier.deposit skips such providers)
 *              → forget providers nothing happened with for FORGET_MS (bounded history)
 *   Runs every `intervalMs` and on demand (API mailboxes.review); one at a time.
 *
 * Providers the user named (ours, the spares, those on accepted trust lists) are candidates of the
 * policy's `trusted` kind: kept
 * while their measured score holds. Without a spare or other candidate nothing is dropped: a
 * provider that loses some mail is still better than none, and the warning says what to do.
 */
import type { Clock, TimerHandle } from '../clock.js';
import { MAX_MAILBOXES, parseOnionAddress } from '../crypto/index.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  DEFAULT_POLICY, ProviderError, judge, rank, replace, verifyTrustList, type ProviderCandidate, type ProviderPolicy, type TrustList,
} from '../provider/index.js';
import { priceWords } from '../registry/index.js';
import type { Store, StoredMessage } from '../store/index.js';
import { MailboxesError } from './errors.js';
import { filtersOf, mergePolicy, readPolicy, type MailboxPolicy } from './mailbox-policy.js';
import type { ProviderScores } from './provider-scores.js';

export interface MailboxReviewOptions {
  store: () => Store;
  scores: ProviderScores;
  /** Subscribing at and dropping our providers (mailboxes.ts). */
  mailboxes: { add(onion: string): Promise<unknown>; remove(onion: string): unknown };
  /** One fetch from a provider (the last before it is dropped). */
  fetchFrom: (onion: string) => Promise<void>;
  /** Leaves a message at its recipient's providers (courier.deposit). */
  deposit: (m: StoredMessage, signal: AbortSignal) => Promise<string[]>;
  /**
   * Candidates besides the user's own (the directory's listings, source 'directory', each with its
   * terms and, when priced, paidUntil), asked only while the user's directory policy is on;
   * `policy` is the one they are judged by. Default none.
   */
  candidates?: (policy: ProviderPolicy, signal: AbortSignal) => Promise<ProviderCandidate[]>;
  /** Defaults for the filters of directory candidates; the user's stored policy overrides them. minScore is the scores'. */
  policy?: Partial<Omit<ProviderPolicy, 'minScore' | 'replicas'>>;
  /** One of ours that no fetch reached for this long is replaced too, ms. Default 2 days. */
  unreachableReplaceMs?: number;
  /** Time between reviews, ms. Default 10 min. */
  intervalMs?: number;
  clock: Clock;
  logger: Logger;
  emit: (ev: { type: string; [k: string]: unknown }) => void;
  /** Aborted when the node closes. */
  signal: AbortSignal;
}

export interface Replaced {
  dropped: string;
  added: string;
  reason: string;
  at: number;
}

export interface ReviewResult {
  settled: { delivered: number; lost: number; void: number };
  replaced: Replaced[];
  /** Ours and bad, kept for want of a replacement. */
  kept: { provider: string; reason: string }[];
  /** Messages left at another provider because the one holding them scored bad or was dropped. */
  redeposited: number;
  /** Directory policy on: providers subscribed at to reach the policy's target. */
  added: string[];
  /** Priced listings that fit the policy but are unpaid, offered when a replacement or fill-up found none: what to pay. */
  payable: { provider: string; message: string }[];
}

const SPARES = 'mailboxes.spares';
const TRUST_LISTS = 'mailboxes.trustLists';
export const MAX_TRUST_LISTS = 8;
const REPLACED = 'mailboxes.replaced';
const POLICY = 'mailboxes.policy';
/** Payable listings named in a result or warning at most. */
const PAYABLE_SHOWN = 3;
export const MAX_SPARES = 16;
/** Replacements shown as warnings for this long. */
const REPLACED_SHOWN_MS = 7 * 24 * 3600 * 1000;
/** A provider nothing happened with for this long is forgotten (unless it is ours or a spare). */
const FORGET_MS = 180 * 24 * 3600 * 1000;
/** Queued messages looked at per review for re-depositing, and deposits tried at most (each may dial). */
const REDEPOSIT_BATCH = 1_000;
const REDEPOSIT_TRIES = 64;

const iso = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace('T', ' ');

export class MailboxReview {
  readonly #o: MailboxReviewOptions;
  #timer: TimerHandle | undefined;
  #running: Promise<ReviewResult> | undefined;
  #closed = false;
  /** Providers a `mailbox.warning` event went out for, with the reason (once per reason); '' for the fill-up. */
  readonly #warned = new Map<string, string>();
  /** Directory policy on and fewer providers than its target after the last review; null otherwise. */
  #short: Short | null = null;

  constructor(o: MailboxReviewOptions) {
    this.#o = o;
  }

  // ── spares: providers the user names as replacements ──────────────────────

  spares(): string[] {
    const raw = this.#o.store().getSetting(SPARES);
    return raw ? (JSON.parse(raw) as string[]) : [];
  }

  addSpare(address: string): string[] {
    const onion = parse(address);
    const list = this.spares();
    if (list.includes(onion)) return list;
    if (list.length >= MAX_SPARES) throw new MailboxesError('TOO_MANY_MAILBOXES', `at most ${MAX_SPARES} spare providers: remove one first`);
    list.push(onion);
    this.#o.store().setSetting(SPARES, JSON.stringify(list));
    return list;
  }

  removeSpare(address: string): string[] {
    const onion = parse(address);
    const list = this.spares();
    if (!list.includes(onion)) throw new MailboxesError('NOT_FOUND', `${onion} is not one of your spare providers`);
    const rest = list.filter((p) => p !== onion);
    this.#o.store().setSetting(SPARES, rest.length ? JSON.stringify(rest) : null);
    return rest;
  }

  // ── the directory policy: whether and which directory listings are candidates ──

  policy(): MailboxPolicy {
    return readPolicy(this.#o.store().getSetting(POLICY));
  }

  /** Changes the fields given (MailboxesError BAD_POLICY for one out of range); the next review acts on it. */
  setPolicy(patch: Partial<MailboxPolicy>): MailboxPolicy {
    const next = mergePolicy(this.policy(), patch);
    this.#o.store().setSetting(POLICY, JSON.stringify(next));
    return next;
  }

  /** What candidates are judged by now: the defaults, the node's options, the user's stored filters, our score line. */
  choicePolicy(): ProviderPolicy {
    return { ...DEFAULT_POLICY, ...this.#o.policy, ...filtersOf(this.policy()), minScore: this.#o.scores.minScore };
  }

  // ── trust lists: providers someone the user trusts vouches for ────────────

  #storedLists(): { text: string; signer: string }[] {
    const raw = this.#o.store().getSetting(TRUST_LISTS);
    return raw ? (JSON.parse(raw) as { text: string; signer: string }[]) : [];
  }

  /**
   * Accepts a trust list signed by `signer` (hex identity key): verified now (signature, signer,
   * expiry; ProviderError BAD_TRUST_LIST / UNTRUSTED_SIGNER otherwise) and kept; one with the same
   * signer and name is replaced.
   */
  addTrustList(text: string, signer: string): TrustList {
    const l = verifyTrustList(text, { trustedSigners: new Set([signer]), now: this.#o.clock.now() });
    const rest = this.#storedLists().filter((x) => {
      try {
        const old = verifyTrustList(x.text, { trustedSigners: new Set([x.signer]), now: 0 });
        return !(old.signer === l.signer && old.name === l.name);
      } catch {
        return true;
      }
    });
    if (rest.length >= MAX_TRUST_LISTS) throw new MailboxesError('TOO_MANY_MAILBOXES', `at most ${MAX_TRUST_LISTS} trust lists: remove one first`);
    this.#o.store().setSetting(TRUST_LISTS, JSON.stringify([...rest, { text, signer }]));
    return l;
  }

  /** The accepted trust lists, each with whether it still holds (an expired one gives no candidates). */
  trustLists(): (TrustList & { valid: boolean; problem: string | null })[] {
    const now = this.#o.clock.now();
    return this.#storedLists().map((x) => {
      const l = verifyTrustList(x.text, { trustedSigners: new Set([x.signer]), now: 0 });
      try {
        verifyTrustList(x.text, { trustedSigners: new Set([x.signer]), now });
        return { ...l, valid: true, problem: null };
      } catch (err) {
        return { ...l, valid: false, problem: err instanceof ProviderError ? err.message : String(err) };
      }
    });
  }

  /** Forgets the trust list called `name`; NOT_FOUND when none is. */
  removeTrustList(name: string): void {
    const all = this.#storedLists();
    const rest = all.filter((x) => verifyTrustList(x.text, { trustedSigners: new Set([x.signer]), now: 0 }).name !== name);
    if (rest.length === all.length) throw new MailboxesError('NOT_FOUND', `no trust list "${name}"`);
    this.#o.store().setSetting(TRUST_LISTS, rest.length ? JSON.stringify(rest) : null);
  }

  /** Providers on the trust lists that still hold. */
  #trusted(): string[] {
    return this.trustLists().filter((l) => l.valid).flatMap((l) => l.providers);
  }

  /** Replacements in the last week, newest first. */
  replaced(): Replaced[] {
    const raw = this.#o.store().getSetting(REPLACED);
    const now = this.#o.clock.now();
    return (raw ? (JSON.parse(raw) as Replaced[]) : []).filter((r) => now - r.at < REPLACED_SHOWN_MS);
  }

  /** For `status`: our providers below the line or out of reach, fewer than the directory policy's target, and recent replacements. */
  warnings(): { type: string; provider?: string; message: string }[] {
    const store = this.#o.store();
    const now = this.#o.clock.now();
    const out: { type: string; provider?: string; message: string }[] = [];
    for (const p of store.mailboxProviders.list()) {
      const r = this.#o.scores.reputation(p.onion);
      if (r.belowThreshold) {
        out.push({
          type: 'mailbox.belowThreshold', provider: p.onion,
          message: `mailbox provider ${p.onion} scores ${r.score.toFixed(2)} (below ${this.#o.scores.minScore}; ${r.counts.lost} message(s) it signed for expired undelivered)`
            + `${this.#spareHint()}`,
        });
      }
      const failingMs = this.#o.unreachableReplaceMs ?? 2 * 24 * 3600 * 1000;
      if (p.fetchFailingSince !== null && now - p.fetchFailingSince >= failingMs) {
        out.push({ type: 'mailbox.unreachable', provider: p.onion, message: `no fetch from mailbox provider ${p.onion} has worked since ${iso(p.fetchFailingSince)}${this.#spareHint()}` });
      }
    }
    if (this.#short && this.policy().directory && store.mailboxProviders.list().length < this.policy().target) {
      out.push({ type: 'mailbox.short', message: shortMessage(this.#short) });
    }
    for (const r of this.replaced()) {
      out.push({ type: 'mailbox.replaced', provider: r.dropped, message: `mailbox provider ${r.dropped} was replaced by ${r.added} on ${iso(r.at)}: ${r.reason}` });
    }
    return out;
  }

  #spareHint(): string {
    return this.spares().length === 0 && !this.trustLists().some((l) => l.valid) ? '; name a replacement with `onionpost mailboxes spare <onion>`' : '';
  }

  // ── reviewing ─────────────────────────────────────────────────────────────

  /** Reviews now (a review already running is joined). */
  review(): Promise<ReviewResult> {
    this.#running ??= this.#review().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Reviews every intervalMs until close(). */
  start(): void {
    if (this.#closed) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = undefined;
      void this.review()
        .catch((err: unknown) => this.#o.logger.warn({ err: describeError(err) }, 'mailbox provider review failed'))
        .finally(() => this.start());
    }, this.#o.intervalMs ?? 10 * 60_000);
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #review(): Promise<ReviewResult> {
    const o = this.#o;
    const settled = o.scores.settle();
    const result: ReviewResult = { settled, replaced: [], kept: [], redeposited: 0, added: [], payable: [] };
    await this.#replace(result);
    result.redeposited = await this.#redeposit();
    const store = o.store();
    store.providerReputations.prune(o.clock.now() - FORGET_MS, [...store.mailboxProviders.list().map((p) => p.onion), ...this.spares(), ...this.#trusted()]);
    return result;
  }

  async #replace(result: ReviewResult): Promise<void> {
    const o = this.#o;
    const store = o.store();
    const now = o.clock.now();
    const current = store.mailboxProviders.list();
    const user = this.policy();
    const auto = user.directory && o.candidates !== undefined;
    if (current.length === 0 && !auto) return;
    const failingMs = o.unreachableReplaceMs ?? 2 * 24 * 3600 * 1000;
    const failing = new Map<string, string>();
    for (const p of current) {
      if (p.fetchFailingSince !== null && now - p.fetchFailingSince >= failingMs) failing.set(p.onion, `no fetch from it has worked since ${iso(p.fetchFailingSince)}`);
    }
    const measured = (c: ProviderCandidate): ProviderCandidate => {
      const r = o.scores.reputation(c.onion);
      return { ...c, score: r.score, proven: r.proven };
    };
    const named = [...current.map((p) => p.onion), ...this.spares(), ...this.#trusted()].map((onion): ProviderCandidate => ({ onion, source: 'trusted' }));
    const base = this.choicePolicy();
    const policy: ProviderPolicy = { ...base, replicas: current.length, dropped: new Set([...base.dropped, ...failing.keys()]) };
    const unique = (cs: ProviderCandidate[]) => {
      const seen = new Set<string>();
      return cs.filter((c) => !seen.has(c.onion) && (seen.add(c.onion), true)).map(measured);
    };
    // Ours are judged as the user's own whatever the directory says, so the chain is read only when
    // one of them is to go or we have fewer than the target: not at every review.
    const needed = auto && (current.length < user.target || replace(current.map((p) => p.onion), unique(named), policy, now).drop.length > 0);
    let extra: ProviderCandidate[] = [];
    if (needed) {
      try {
        extra = await o.candidates!(base, o.signal);
      } catch (err) {
        o.logger.warn({ err: describeError(err) }, 'could not list candidate mailbox providers');
      }
    }
    const candidates = unique([...named, ...extra]);
    const plan = replace(current.map((p) => p.onion), candidates, policy, now);
    // The policy's picks first; when one cannot be subscribed at now, the next in its ranking.
    const order = [...plan.add, ...rank(candidates, policy, now).map((c) => c.onion).filter((x) => !plan.add.includes(x) && !plan.keep.includes(x))];
    let offered: ReviewResult['payable'] | undefined;
    const payable = () => (offered ??= this.#payable(candidates, policy, now));
    for (const d of plan.drop) {
      if (o.signal.aborted) return;
      const reason = failing.get(d.onion) ?? d.reason;
      // A full list makes room first: the bad one goes even if no replacement answers.
      const full = store.mailboxProviders.list().length >= MAX_MAILBOXES;
      if (full) await this.#drop(d.onion);
      const added = await this.#subscribeNext(order);
      if (added === null && !full) {
        result.kept.push({ provider: d.onion, reason });
        result.payable = payable();
        if (this.#warned.get(d.onion) !== reason) {
          this.#warned.set(d.onion, reason);
          o.logger.warn({ provider: d.onion, reason }, 'a mailbox provider of ours should be replaced, but no candidate is available');
          o.emit({ type: 'mailbox.warning', provider: d.onion, reason, message: `mailbox provider ${d.onion}: ${reason}; no replacement available${payableHint(result.payable)}` });
        }
        continue;
      }
      if (!full) await this.#drop(d.onion);
      const r: Replaced = { dropped: d.onion, added: added ?? '', reason, at: now };
      store.providerReputations.note(d.onion, 'replaced', now, added ? `by ${added}: ${reason}` : reason);
      store.setSetting(REPLACED, JSON.stringify([r, ...this.replaced()].slice(0, 8)));
      this.#warned.delete(d.onion);
      result.replaced.push(r);
      o.logger.warn({ dropped: d.onion, added, reason }, 'replaced a mailbox provider');
      o.emit({ type: 'mailbox.replaced', ...r });
    }
    if (!auto || o.signal.aborted) return;
    // Fill up to the target from the directory only: spares and trust lists stand in for a bad one, not beside it.
    const fromDirectory = new Set(candidates.filter((c) => c.source === 'directory').map((c) => c.onion));
    const fill = order.filter((x) => fromDirectory.has(x));
    while (store.mailboxProviders.list().length < user.target && !o.signal.aborted) {
      const added = await this.#subscribeNext(fill);
      if (added === null) break;
      result.added.push(added);
      o.logger.info({ added }, 'subscribed at a mailbox provider from the directory (directory policy)');
      o.emit({ type: 'mailbox.added', provider: added, reason: `fewer than ${user.target} mailbox providers; picked from the directory by your policy` });
    }
    const have = store.mailboxProviders.list().length;
    this.#short = have < user.target ? { have, target: user.target, payable: payable() } : null;
    if (this.#short) {
      result.payable = this.#short.payable;
      const reason = `short:${have}:${result.payable.map((x) => x.provider).join(',')}`;
      if (this.#warned.get('') !== reason) {
        this.#warned.set('', reason);
        o.emit({ type: 'mailbox.warning', reason: 'fewer than the target', message: shortMessage(this.#short) });
      }
    } else {
      this.#warned.delete('');
    }
  }

  /** Subscribes at the first of `order` that takes us (each tried is removed); null: none did. */
  async #subscribeNext(order: string[]): Promise<string | null> {
    const o = this.#o;
    while (order.length > 0 && !o.signal.aborted) {
      const next = order.shift()!;
      if (o.store().mailboxProviders.get(next)) continue;
      try {
        await o.mailboxes.add(next);
        return next;
      } catch (err) {
        o.logger.info({ provider: next, err: describeError(err) }, 'could not subscribe at a mailbox provider; trying the next');
      }
    }
    return null;
  }

  /** Priced directory listings that pass every filter but payment, best first: what the user could pay. */
  #payable(candidates: readonly ProviderCandidate[], policy: ProviderPolicy, now: number): ReviewResult['payable'] {
    const unpaid = candidates.filter((c) => c.source === 'directory' && judge(c, policy, now).payable === true);
    // Ranked as if paid: the same order they would be used in.
    return rank(unpaid.map((c) => ({ ...c, paidUntil: Number.MAX_SAFE_INTEGER })), policy, now).slice(0, PAYABLE_SHOWN).map((c) => ({
      provider: c.onion,
      message: `${c.onion} (${priceWords(c.price ?? 0n, c.token ?? null)}) fits your policy but is not paid: pay with \`onionpost providers pay ${c.onion}\``,
    }));
  }

  /** Takes what the provider still holds for us (best effort), then forgets it. */
  async #drop(onion: string): Promise<void> {
    try {
      await this.#o.fetchFrom(onion);
    } catch (err) {
      this.#o.logger.info({ provider: onion, err: describeError(err) }, 'last fetch from a dropped mailbox provider failed');
    }
    try {
      this.#o.mailboxes.remove(onion);
    } catch (err) {
      // Removed meanwhile (the user): nothing left to do.
      if (!(err instanceof MailboxesError && err.code === 'NOT_FOUND')) throw err;
    }
  }

  /** Queued messages held at a provider now scored bad or no longer listed: left at another. */
  async #redeposit(): Promise<number> {
    const o = this.#o;
    const store = o.store();
    let n = 0;
    let tries = 0;
    for (const h of store.providerReputations.heldQueued(REDEPOSIT_BATCH)) {
      if (o.signal.aborted || tries >= REDEPOSIT_TRIES) break;
      const listed = store.deposits.peerMailboxes(h.peerIdentity);
      if (h.mailboxes.every((p) => listed.includes(p) && o.scores.usable(p))) continue;
      const m = store.getMessage(h.id);
      if (!m || m.state !== 'queued') continue;
      tries++;
      try {
        const held = await o.deposit(m, o.signal);
        if (held.length > h.mailboxes.length) {
          n++;
          o.emit({ type: 'message.state', id: m.id, state: 'in_mailbox', mailboxes: held });
        }
      } catch (err) {
        o.logger.info({ id: m.id, err: describeError(err) }, 're-depositing a message failed');
      }
    }
    return n;
  }
}

interface Short {
  have: number;
  target: number;
  payable: ReviewResult['payable'];
}

function payableHint(payable: ReviewResult['payable']): string {
  return payable.length ? `; ${payable.map((x) => x.message).join('; ')}` : '';
}

function shortMessage(s: Short): string {
  return `you have ${s.have} mailbox provider${s.have === 1 ? '' : 's'}, fewer than the ${s.target} your policy asks for, and no eligible one in the directory took you${payableHint(s.payable)}`;
}

function parse(address: string): string {
  try {
    return parseOnionAddress(address.trim()).onion;
  } catch (err) {
    throw new MailboxesError('BAD_ADDRESS', `"${address}" is not a v3 onion address`, { cause: err });
  }
}
