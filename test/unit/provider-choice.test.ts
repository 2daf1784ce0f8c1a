/**
 * Choosing mailbox providers: measured reputation (weights, decay, "held but never delivered"
 * dominating), the user's policy (filters, own providers first, cooling, drop) and the replacement
 * of a provider that falls below the threshold; signed trust lists.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cryptoReady, generateIdentity, type Identity } from '../../src/crypto/index.js';
import { toHex } from '../../src/bytes.js';
import {
  DEFAULT_POLICY, ProviderError, judge, rank, replace, reputationOf, signTrustList, verifyTrustList,
  type ProviderCandidate, type ProviderPolicy, type ReputationEvent,
} from '../../src/provider/index.js';

const DAY = 24 * 3600 * 1000;
const NOW = Date.UTC(2026, 10, 29);
let ids: Identity[];
const onion = (i: number) => ids[i]!.onion as string;

before(async () => {
  await cryptoReady();
  ids = Array.from({ length: 8 }, () => generateIdentity());
});

const many = (kind: ReputationEvent['kind'], n: number, at = NOW): ReputationEvent[] => Array.from({ length: n }, () => ({ kind, at }));

test('reputation: good work raises the score, one lost message outweighs many deposits, old events fade', () => {
  assert.equal(reputationOf([], NOW).score, 0.5);
  assert.equal(reputationOf([], NOW).proven, false);
  const good = reputationOf([...many('deposit_ok', 20), ...many('delivered', 10)], NOW);
  assert.ok(good.score > 0.95 && good.proven);
  const lossy = reputationOf([...many('deposit_ok', 20), ...many('delivered', 8), ...many('lost', 2)], NOW);
  assert.ok(lossy.score < 0.6, `2 lost of 22 deposits: ${lossy.score}`);
  assert.equal(lossy.counts.lost, 2);
  // The same losses two half-lives ago, followed by good recent work, leave a provider above the line.
  const mended = reputationOf([...many('lost', 2, NOW - 28 * DAY), ...many('deposit_ok', 20), ...many('delivered', 10)], NOW);
  assert.ok(mended.score > 0.6, String(mended.score));
  assert.ok(reputationOf(many('unreachable', 10), NOW).score < 0.1);
});

function policy(over: Partial<ProviderPolicy> = {}): ProviderPolicy {
  return { ...DEFAULT_POLICY, maxPrice: new Map([[null, 10_000_000n]]), ...over };
}

test('policy: filters say why; own providers are always first; cooling and dropping exclude', () => {
  const p = policy({ minStakeSun: 100n, minRetentionDays: 14 });
  const dir = (i: number, over: Partial<ProviderCandidate> = {}): ProviderCandidate =>
    ({ onion: onion(i), source: 'directory', stakeSun: 1000n, retentionDays: 14, quotaMB: 100, price: 0n, ...over });
  assert.equal(judge(dir(1, { stakeSun: 99n }), p, NOW).reason, 'stake below your minimum');
  assert.equal(judge(dir(1, { retentionDays: 7 }), p, NOW).reason, 'keeps mail for too short a time');
  assert.equal(judge(dir(1, { price: 20_000_000n }), p, NOW).reason, 'costs more than your maximum');
  assert.equal(judge(dir(1, { price: 1n, token: 'TXYZ' }), p, NOW).reason, 'priced in a currency you do not pay in');
  assert.match(judge(dir(1, { proven: true, score: 0.3 }), p, NOW).reason!, /below 0.6/);
  assert.equal(judge(dir(1, { coolingUntil: NOW + 1 }), p, NOW).reason, 'misbehaved recently; cooling off');
  assert.ok(judge(dir(1, { coolingUntil: NOW }), p, NOW).eligible);
  assert.equal(judge({ onion: onion(2), source: 'own' }, policy({ dropped: new Set([onion(2)]) }), NOW).reason, 'you dropped it');
  // An own provider with a bad score is still the user's choice.
  assert.ok(judge({ onion: onion(2), source: 'own', proven: true, score: 0.1 }, p, NOW).eligible);

  const ranked = rank([
    dir(3, { proven: true, score: 0.9, stakeSun: 5000n }),
    dir(4, { proven: true, score: 0.9, stakeSun: 9000n }),
    { onion: onion(5), source: 'trusted' },
    dir(6),
    { onion: onion(2), source: 'own' },
    dir(7, { proven: true, score: 0.2 }),
  ], p, NOW).map((c) => c.onion);
  assert.deepEqual(ranked, [onion(2), onion(5), onion(4), onion(3), onion(6)]);
});

test('replace: a provider that loses mail is dropped for the next best, up to the replica count', () => {
  const p = policy();
  const cands: ProviderCandidate[] = [
    { onion: onion(1), source: 'directory', stakeSun: 1n, retentionDays: 14, quotaMB: 100, price: 0n, proven: true, score: 0.95 },
    { onion: onion(2), source: 'directory', stakeSun: 1n, retentionDays: 14, quotaMB: 100, price: 0n, proven: true, score: 0.3 },
    { onion: onion(3), source: 'directory', stakeSun: 1n, retentionDays: 14, quotaMB: 100, price: 0n, proven: true, score: 0.8 },
  ];
  const r = replace([onion(1), onion(2)], cands, p, NOW);
  assert.deepEqual(r.keep, [onion(1)]);
  assert.deepEqual(r.drop.map((d) => d.onion), [onion(2)]);
  assert.deepEqual(r.add, [onion(3)]);
  assert.deepEqual(replace([onion(1), onion(3)], cands, p, NOW), { keep: [onion(1), onion(3)], drop: [], add: [] });
  assert.deepEqual(replace([onion(4)], cands, p, NOW).drop, [{ onion: onion(4), reason: 'no longer offered' }]);
});

test('policy: a spread key spreads users over providers that tie, and never outranks source or score', () => {
  const cands: ProviderCandidate[] = ids.map((_, i) => ({ onion: onion(i), source: 'directory', stakeSun: BigInt(1000 * (i + 1)), retentionDays: 14, quotaMB: 100, price: 0n }));
  const picks = (spread?: Uint8Array) => replace([], cands, policy(spread ? { spread } : {}), NOW).add;
  // Without it every user picks the same two: the highest stakes.
  assert.deepEqual(picks(), [onion(7), onion(6)]);
  const keys = Array.from({ length: 60 }, (_, i) => new Uint8Array(32).fill(i));
  const chosen = new Set(keys.flatMap((k) => picks(k)));
  assert.ok(chosen.size >= 7, `60 users spread over ${chosen.size} of 8 providers`);
  assert.deepEqual(picks(keys[5]), picks(Uint8Array.from(keys[5]!)), 'the same key, the same choice');
  // A measured provider above the rest, and a trusted one, still come first for everyone.
  const better = cands.map((c, i) => (i === 2 ? { ...c, proven: true, score: 0.9 } : i === 4 ? { ...c, source: 'trusted' as const } : c));
  for (const k of keys) assert.deepEqual(replace([], better, policy({ spread: k }), NOW).add, [onion(4), onion(2)]);
});

test('trust lists: signed by a trusted signer and unexpired, or refused with a typed code', () => {
  const signer = ids[0]!;
  const text = signTrustList(signer, { name: 'friends', providers: [onion(1), onion(2).toUpperCase()], now: NOW, lifetimeMs: 30 * DAY });
  const trusted = new Set([toHex(signer.identityKey)]);
  const l = verifyTrustList(text, { trustedSigners: trusted, now: NOW + DAY });
  assert.deepEqual(l.providers, [onion(1), onion(2)]);
  assert.equal(l.name, 'friends');
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof ProviderError);
      return err.code;
    }
    return 'none';
  };
  assert.equal(code(() => verifyTrustList(text, { trustedSigners: new Set(), now: NOW })), 'UNTRUSTED_SIGNER');
  assert.equal(code(() => verifyTrustList(text, { trustedSigners: trusted, now: NOW + 31 * DAY })), 'BAD_TRUST_LIST');
  const j = JSON.parse(text);
  j.providers = [onion(3)];
  assert.equal(code(() => verifyTrustList(JSON.stringify(j), { trustedSigners: trusted, now: NOW })), 'BAD_TRUST_LIST', 'a changed list does not verify');
  assert.equal(code(() => verifyTrustList('{', { trustedSigners: trusted, now: NOW })), 'BAD_TRUST_LIST');
  assert.equal(code(() => verifyTrustList(JSON.stringify({ ...JSON.parse(text), providers: ['nope.onion'] }), { trustedSigners: trusted, now: NOW })), 'BAD_TRUST_LIST');
  // Formatting does not matter: the signature is over canonical bytes.
  assert.deepEqual(verifyTrustList(JSON.stringify(JSON.parse(text)), { trustedSigners: trusted, now: NOW }).providers, l.providers);
});
