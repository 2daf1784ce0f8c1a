import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBrowserSessions } from '../../src/api/index.js';
import { ManualClock } from '../../src/clock.js';
import { DEFAULT_API_LIMITS } from '../../src/limits.js';

const MIN = 60_000;
const HOUR = 60 * MIN;

function make(overrides: Partial<typeof DEFAULT_API_LIMITS> = {}) {
  const clock = new ManualClock();
  return { clock, s: createBrowserSessions({ clock, limits: { ...DEFAULT_API_LIMITS, ...overrides } }) };
}

test('a login code is redeemed once, within its 2 minutes, for two fresh secrets', () => {
  const { clock, s } = make();
  const { code, expiresAt } = s.newLoginCode();
  assert.match(code, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(expiresAt, clock.now() + 2 * MIN);
  const session = s.redeem(code);
  assert.notEqual(session.cookieSecret, session.pageSecret);
  assert.match(session.cookieSecret, /^[A-Za-z0-9_-]{43}$/);
  assert.throws(() => s.redeem(code), { code: 'LOGIN_CODE_USED' });
  assert.throws(() => s.redeem('x'.repeat(22)), { code: 'LOGIN_CODE_UNKNOWN' });
  const late = s.newLoginCode();
  clock.advance(2 * MIN);
  assert.throws(() => s.redeem(late.code), { code: 'LOGIN_CODE_EXPIRED' });
});

test('a session needs both halves; it ends after idle time, after its maximum age, and on revoke', () => {
  const { clock, s } = make();
  const a = s.redeem(s.newLoginCode().code);
  assert.equal(s.check(undefined, a.pageSecret), 'absent');
  assert.equal(s.check(a.cookieSecret, undefined), 'ended');
  assert.equal(s.check(a.cookieSecret, a.cookieSecret), 'ended');
  assert.equal(s.check(a.pageSecret, a.pageSecret), 'ended');
  assert.equal(s.check(a.cookieSecret, a.pageSecret), 'ok');

  // Idle: used every 11 hours it lives on, until the 7-day absolute limit.
  for (let i = 0; i < 15; i++) {
    clock.advance(11 * HOUR);
    assert.equal(s.check(a.cookieSecret, a.pageSecret), 'ok', `use ${i}`);
  }
  clock.advance(7 * 24 * HOUR - 15 * 11 * HOUR);
  assert.equal(s.check(a.cookieSecret, a.pageSecret), 'ended', 'absolute expiry');

  const b = s.redeem(s.newLoginCode().code);
  clock.advance(11 * HOUR);
  assert.equal(s.check(b.cookieSecret, b.pageSecret, { touch: false }), 'ok');
  clock.advance(HOUR);
  assert.equal(s.check(b.cookieSecret, b.pageSecret), 'ended', 'a check without touch does not keep a session alive');

  const c = s.redeem(s.newLoginCode().code);
  const d = s.redeem(s.newLoginCode().code);
  assert.equal(s.revoke(c.cookieSecret), true);
  assert.equal(s.check(c.cookieSecret, c.pageSecret), 'ended');
  assert.equal(s.check(d.cookieSecret, d.pageSecret), 'ok');
  const pending = s.newLoginCode();
  assert.equal(s.revokeAll(), 1);
  assert.equal(s.check(d.cookieSecret, d.pageSecret), 'ended');
  assert.throws(() => s.redeem(pending.code), { code: 'LOGIN_CODE_UNKNOWN' }, 'revokeAll also forgets unredeemed codes');
});

test('codes and sessions are capped: the oldest code and the least recently used session go first', () => {
  const { s } = make({ maxLoginCodes: 2, maxSessions: 2 });
  const c1 = s.newLoginCode();
  const c2 = s.newLoginCode();
  const c3 = s.newLoginCode();
  assert.throws(() => s.redeem(c1.code), { code: 'LOGIN_CODE_UNKNOWN' });
  const a = s.redeem(c2.code);
  const b = s.redeem(c3.code);
  assert.equal(s.check(a.cookieSecret, a.pageSecret), 'ok'); // a is now the most recently used
  const c = s.redeem(s.newLoginCode().code);
  assert.equal(s.count(), 2);
  assert.equal(s.check(b.cookieSecret, b.pageSecret), 'ended');
  assert.equal(s.check(a.cookieSecret, a.pageSecret), 'ok');
  assert.equal(s.check(c.cookieSecret, c.pageSecret), 'ok');
});
