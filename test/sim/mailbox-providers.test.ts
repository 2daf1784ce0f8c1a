/**
 * Mailbox providers at scale (issue 12, item 5; the model is described in sim.ts): the real
 * protocol, stores, reputation and policy code, bad providers among good ones, users who come and
 * go over simulated weeks. Prints its figures; asserts delivery, no duplicates, every loss visible to
 * its sender, and bad providers scored below good ones.
 *
 *   node dist/test/run.js --tier sim                          the default size (what npm test runs)
 *   ONIONPOST_SIM_FULL=1 node dist/test/run.js --tier sim     20 providers, 200 users, 4 weeks
 *   ONIONPOST_SIM_SEED=<n>|random                             another seed (printed; reproduces)
 *   ONIONPOST_SIM_DIR=<dir>                                   where the provider files go (default /dev/shm when there is one)
 *   ONIONPOST_SIM_PROGRESS=1                                  a line per simulated day
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cryptoReady } from '../../src/crypto/index.js';
import { FULL_SIZE, formatFigures, runSimulation, type SimConfig, type SimResult } from './sim.js';

/** What npm test runs: the full cast of providers, fewer users and a shorter run, to stay well under a minute. */
const DEFAULT_SIZE: Omit<SimConfig, 'seed' | 'dir'> = { ...FULL_SIZE, users: 50, days: 21 };
const DEFAULT_SEED = 12;

function baseDir(): string {
  const given = process.env['ONIONPOST_SIM_DIR'];
  if (given) return given;
  // The stores' fsyncs are not what this measures (the kill -9 tests are); on tmpfs they cost nothing.
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

function seedFromEnv(): number {
  const s = process.env['ONIONPOST_SIM_SEED'];
  if (s === undefined || s === '') return DEFAULT_SEED;
  if (s === 'random') return Math.floor(Math.random() * 2 ** 31);
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`ONIONPOST_SIM_SEED=${s}: a non-negative integer or "random"`);
  return n;
}

async function simulate(size: Omit<SimConfig, 'seed' | 'dir'>, seed: number, progress?: (line: string) => void): Promise<SimResult> {
  await cryptoReady();
  const dir = mkdtempSync(join(baseDir(), 'onionpost-sim-'));
  try {
    return await runSimulation({ ...size, seed, dir }, progress);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('one seed, one run: the simulation is deterministic', async () => {
  const small = { ...FULL_SIZE, providers: 8, users: 16, days: 8, ttlDays: 2 };
  const strip = (r: SimResult) => formatFigures(r).filter((l) => !l.startsWith('wall time'));
  const a = await simulate(small, 7);
  const b = await simulate(small, 7);
  assert.deepEqual(strip(a), strip(b));
  assert.ok(a.messages > 50, `${a.messages} messages`);
});

test('mailbox providers at scale: ≥ 99.9 % delivered, no duplicates, every loss shown expired, bad providers scored below good ones', { timeout: 15 * 60_000 }, async (t) => {
  const full = process.env['ONIONPOST_SIM_FULL'] === '1';
  const seed = seedFromEnv();
  t.diagnostic(`${full ? 'full' : 'default'} size, seed ${seed}`);
  const r = await simulate(full ? FULL_SIZE : DEFAULT_SIZE, seed, process.env['ONIONPOST_SIM_PROGRESS'] ? (l) => t.diagnostic(l) : undefined);
  for (const line of formatFigures(r)) t.diagnostic(line);
  t.diagnostic(`JSON ${JSON.stringify({
    seed: r.seed, full, providers: r.cfg.providers, users: r.cfg.users, days: r.cfg.days, messages: r.messages,
    deliveredPct: Number(r.deliveredPct.toFixed(3)), duplicates: r.duplicates, expired: r.expired, undelivered: r.undelivered,
    meanDelayH: Number(r.meanDelayH.toFixed(2)), p99DelayH: Number(r.p99DelayH.toFixed(2)), replacements: r.replacements,
    replacementsOfGood: r.replacementsOfGood, wallS: Number((r.wallMs / 1000).toFixed(1)),
    scores: Object.fromEntries(r.providers.map((p) => [`p${p.idx}:${p.kind}`, Number(p.score.toFixed(3))])),
  })}`);
  const why = `seed ${seed}; rerun with ONIONPOST_SIM_SEED=${seed}${full ? ' ONIONPOST_SIM_FULL=1' : ''}`;

  // The bad behaviours happened, so what follows is measured against them.
  const bad = r.providers.filter((p) => p.kind !== 'good');
  assert.ok(bad.filter((p) => p.kind === 'dropper').every((p) => p.dropped > 0), `every dropper dropped something (${why})`);
  assert.ok(bad.filter((p) => p.kind === 'refuser').every((p) => p.refused > 0), `every refuser refused something (${why})`);
  assert.ok(bad.filter((p) => p.kind === 'offline').every((p) => p.downDays >= 3), `every offline provider was down for days (${why})`);
  assert.ok(r.messages >= 1000, `${r.messages} messages (${why})`);

  assert.ok(r.deliveredPct >= 99.9, `${r.deliveredPct.toFixed(3)} % delivered (${why})`);
  assert.equal(r.duplicates, 0, `duplicates delivered (${why})`);
  assert.equal(r.notFinal, 0, `messages neither delivered nor expired for their sender at the end (${why})`);
  assert.equal(r.undeliveredNotExpired, 0, `undelivered messages not shown expired to their sender (${why})`);
  const goodScores = r.providers.filter((p) => p.kind === 'good').map((p) => p.score);
  const worstGood = Math.min(...goodScores);
  for (const p of bad) assert.ok(p.score < worstGood, `p${p.idx} (${p.kind}) scored ${p.score.toFixed(3)}, not below the worst good provider's ${worstGood.toFixed(3)} (${why})`);
  // An honest client is never rate-limited, and nothing sent or answered was malformed.
  assert.equal(r.stats.rateLimited, 0, why);
  assert.equal(r.stats.malformed, 0, why);
  // Every timer the protocol code set on the clock was cleared.
  assert.equal(r.pendingTimers, 0, why);
});
