/**
 * The web UI's browser sessions. The API token never reaches a browser; a browser signs in with a
 * login code and gets a session of its own:
 *
 *   onionpost ui ──token──> RPC sessions.loginLink ──> http://127.0.0.1:<port>/login?code=<code>
 *                                                     (16 random bytes, single use, 2 min)
 *   browser: GET /login             the static sign-in page (web/login.html); it needs no secret
 *            POST /session {code}   redeems the code once and opens a session with two secrets:
 *              cookie secret  Set-Cookie onionpost_session_<port>=…; HttpOnly; SameSite=Strict; Path=/
 *              page secret    in the JSON answer; the page keeps it in localStorage
 *   every later request carries both: the cookie, and the page secret in the X-Onionpost-Session
 *   header (on the WebSocket upgrade, as the subprotocol `onionpost.session.<secret>`)
 *            DELETE /session        signs this browser out
 *   onionpost ui --sign-out-all ──token──> RPC sessions.revokeAll
 *
 * Why two secrets. Browsers scope cookies by host, not by port, so every other web service on
 * 127.0.0.1 that the browser visits receives our cookie, whatever its name or flags (SameSite does
 * not help: pages on two ports of one host are the same site). A local process of another user
 * running such a service could replay the cookie. localStorage, though, is scoped by origin, which
 * includes the port, so no other port's page can read the page secret, and the cookie alone opens
 * nothing. The cookie half is HttpOnly, so script on our own origin cannot carry a complete
 * credential away either. The cookie's name includes the port so that two nodes on one host do not
 * overwrite each other's session. A `__Host-` name would not help: it scopes the cookie by host,
 * not port, exactly like a plain name, so it would neither separate two nodes nor keep other ports
 * from receiving it; and it requires the Secure flag, which over http://127.0.0.1 some browsers
 * accept (Chromium 2026 does: loopback counts as a secure context) and others need not.
 *
 * Sessions live in memory only: a restart signs every browser out, by design. Secrets are stored
 * as SHA-256 hashes, so a lookup by an attacker's guess compares hashes, never the secret itself.
 * Idle and absolute expiry, and the caps on codes and sessions, come from `ApiLimits`.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { ApiLimits } from '../limits.js';
import { ApiError } from './errors.js';

/** Base name of the session cookie; the node's API port is appended: onionpost_session_<port>. */
export const SESSION_COOKIE_PREFIX = 'onionpost_session_';
/** Request header that carries the page secret. */
export const SESSION_HEADER = 'x-onionpost-session';
/** WebSocket subprotocol prefix that carries the page secret (browsers cannot set headers on a WebSocket). */
export const SESSION_SUBPROTOCOL_PREFIX = 'onionpost.session.';
/** The WebSocket subprotocol the server selects. */
export const API_SUBPROTOCOL = 'onionpost';

export function sessionCookieName(port: number): string {
  return `${SESSION_COOKIE_PREFIX}${port}`;
}

/** What a browser receives when it redeems a login code. */
export interface NewSession {
  cookieSecret: string;
  pageSecret: string;
  /** Absolute expiry, ms since epoch. */
  expiresAt: number;
}

/**
 * The outcome of checking a request's session credentials:
 * - `ok`: both halves match one live session (its idle clock restarts);
 * - `absent`: no session cookie at all;
 * - `ended`: a session cookie that opens no live session (expired, signed out, revoked, the node
 *   restarted, or the page secret is missing or wrong).
 */
export type SessionCheck = 'ok' | 'absent' | 'ended';

export interface BrowserSessions {
  /** A fresh single-use login code. */
  newLoginCode(): { code: string; expiresAt: number };
  /** Redeems a code (once) for a new session; throws ApiError LOGIN_CODE_EXPIRED, LOGIN_CODE_USED or LOGIN_CODE_UNKNOWN. */
  redeem(code: string): NewSession;
  /** `touch: false` checks without counting as activity (pushing an event is not the user's doing). Default true. */
  check(cookieSecret: string | undefined, pageSecret: string | undefined, opts?: { touch?: boolean }): SessionCheck;
  /** Ends the session the cookie secret belongs to; true if there was one. */
  revoke(cookieSecret: string): boolean;
  /** Ends every session and forgets every unredeemed code; returns how many sessions ended. */
  revokeAll(): number;
  /** Live sessions (expired ones are dropped first). */
  count(): number;
}

export interface BrowserSessionsOptions {
  clock: Clock;
  limits: Pick<ApiLimits, 'loginCodeTtlMs' | 'maxLoginCodes' | 'sessionIdleMs' | 'sessionMaxAgeMs' | 'maxSessions'>;
  /** Default node:crypto randomBytes. */
  random?: (n: number) => Uint8Array;
}

const hash = (secret: string): Buffer => createHash('sha256').update(secret, 'utf8').digest();
const key = (secret: string): string => hash(secret).toString('base64url');

export function createBrowserSessions(opts: BrowserSessionsOptions): BrowserSessions {
  const { clock, limits } = opts;
  const random = opts.random ?? ((n: number) => randomBytes(n));
  const secret = (n: number) => Buffer.from(random(n)).toString('base64url');
  // Insertion order = age, which is what the caps evict by. A used code stays (used: true) until it
  // would have expired, so its second use is told apart from a typo.
  const codes = new Map<string, { expiresAt: number; used: boolean }>();
  // Map order = least recently used first (check() re-inserts).
  const sessions = new Map<string, { pageHash: Buffer; createdAt: number; lastSeenAt: number }>();

  function prune(now: number): void {
    for (const [k, c] of codes) if (c.expiresAt <= now) codes.delete(k);
    for (const [k, s] of sessions) if (!live(s, now)) sessions.delete(k);
  }
  const live = (s: { createdAt: number; lastSeenAt: number }, now: number) =>
    now - s.lastSeenAt < limits.sessionIdleMs && now - s.createdAt < limits.sessionMaxAgeMs;

  return {
    newLoginCode() {
      const now = clock.now();
      prune(now);
      while (codes.size >= limits.maxLoginCodes) codes.delete(codes.keys().next().value!);
      const code = secret(16);
      const expiresAt = now + limits.loginCodeTtlMs;
      codes.set(key(code), { expiresAt, used: false });
      return { code, expiresAt };
    },
    redeem(code) {
      const now = clock.now();
      const k = key(code);
      const c = codes.get(k);
      if (!c) throw new ApiError('LOGIN_CODE_UNKNOWN', 'this login link is not valid for this node');
      if (c.expiresAt <= now) {
        codes.delete(k);
        throw new ApiError('LOGIN_CODE_EXPIRED', 'this login link has expired');
      }
      if (c.used) throw new ApiError('LOGIN_CODE_USED', 'this login link was already used');
      c.used = true;
      prune(now);
      while (sessions.size >= limits.maxSessions) sessions.delete(sessions.keys().next().value!);
      const s = { cookieSecret: secret(32), pageSecret: secret(32) };
      sessions.set(key(s.cookieSecret), { pageHash: hash(s.pageSecret), createdAt: now, lastSeenAt: now });
      return { ...s, expiresAt: now + limits.sessionMaxAgeMs };
    },
    check(cookieSecret, pageSecret, o = {}) {
      if (cookieSecret === undefined) return 'absent';
      const now = clock.now();
      const k = key(cookieSecret);
      const s = sessions.get(k);
      if (!s) return 'ended';
      if (!live(s, now)) {
        sessions.delete(k);
        return 'ended';
      }
      if (pageSecret === undefined || !timingSafeEqual(hash(pageSecret), s.pageHash)) return 'ended';
      if (o.touch !== false) {
        s.lastSeenAt = now;
        sessions.delete(k);
        sessions.set(k, s);
      }
      return 'ok';
    },
    revoke(cookieSecret) {
      return sessions.delete(key(cookieSecret));
    },
    revokeAll() {
      prune(clock.now());
      const n = sessions.size;
      sessions.clear();
      codes.clear();
      return n;
    },
    count() {
      prune(clock.now());
      return sessions.size;
    },
  };
}
