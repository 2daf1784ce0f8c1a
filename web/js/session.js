// The browser's half of a web UI session (the protocol is described in src/api/sessions.ts).
// A session is two secrets: an HttpOnly cookie this code never sees, and a page secret kept in
// localStorage and sent as a header. localStorage belongs to this origin, port included, so pages
// served by other programs on 127.0.0.1 cannot read it, although they do receive our cookie.
import { h } from './dom.js';

const KEY = 'onionpost.session';
export const SESSION_HEADER = 'x-onionpost-session';
/** WebSocket subprotocols: the API's, and the page secret (browsers cannot set headers on a WebSocket). */
export const SUBPROTOCOL = 'onionpost';
export const SECRET_SUBPROTOCOL_PREFIX = 'onionpost.session.';

/** The command that prints a fresh sign-in link. The sign-in page names exactly this. */
export const SIGN_IN_COMMAND = 'onionpost ui';

export function pageSecret() {
  try {
    return localStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function keepPageSecret(secret) {
  localStorage.setItem(KEY, secret);
}

export function forgetPageSecret() {
  try {
    localStorage.removeItem(KEY);
  } catch {
    // storage disabled: nothing kept
  }
}

/** Headers that carry the page secret, if there is one. */
export function sessionHeaders() {
  const s = pageSecret();
  return s ? { [SESSION_HEADER]: s } : {};
}

/** Ends this browser's session on the node (and its cookie), then forgets the page secret. */
export async function signOut() {
  try {
    await fetch('/session', { method: 'DELETE', credentials: 'same-origin', headers: sessionHeaders() });
  } finally {
    forgetPageSecret();
  }
}

const REASONS = {
  none: ['Sign in to your node', 'This page talks to your onionpost node only after you sign in with a login link from the node.'],
  ended: ['Your session has ended', 'Browser sessions end after 12 hours without use, after 7 days in any case, when you sign out, when all sessions are signed out from the command line, and when the node restarts.'],
  'signed-out': ['You are signed out', 'This browser no longer has access to your node.'],
  LOGIN_CODE_EXPIRED: ['This login link has expired', 'A login link works for 2 minutes after it is made.'],
  LOGIN_CODE_USED: ['This login link was already used', 'Each login link signs in one browser, once.'],
  LOGIN_CODE_UNKNOWN: ['This login link is not valid', 'It was not made by the node running here (or the node restarted since).'],
  OFFLINE: ['Cannot reach your node', 'Is `onionpost start` still running?'],
};

/** The signed-out page: what happened, and the one command that prints a fresh link. */
export function signInHelp(reason) {
  const [title, why] = REASONS[reason] ?? REASONS.none;
  return h('section', { class: 'view narrow', testid: 'login-needed', 'data-reason': reason },
    h('h1', { tabindex: -1 }, title),
    h('p', { testid: 'login-reason' }, why),
    h('ol', { class: 'steps' },
      h('li', {}, 'In a terminal on this computer, run ', h('code', { testid: 'signin-command' }, SIGN_IN_COMMAND),
        ' (add ', h('code', {}, '--data-dir DIR'), ' if your node uses one; from a source checkout, ', h('code', {}, `npx ${SIGN_IN_COMMAND}`), ').'),
      h('li', {}, 'Open the link it prints in this browser within 2 minutes.'),
      h('li', {}, 'You land in your inbox, signed in.')),
    h('p', { class: 'muted' }, 'Never paste a login link into a site or a chat: until it is used or expires, anyone with it can sign in to your node.'));
}
