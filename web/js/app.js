// The single-page app: a hash router (#/inbox, #/archive, #/search?q=…, #/read/<id>, #/chats,
// #/chat/<onion>, #/compose?to=…, #/drafts, #/outbox, #/sent, #/contacts, #/contact/<alias>,
// #/mailboxes, #/status), the shared header (unread count, held count, key-change alerts, connection state), the
// unread count in the tab title, desktop notifications (when the user allowed them), the live
// event stream, and the polite announcer. Each view module exports
//   mount(ctx, route) → Promise<{ el, title, refresh?(), onEvent?(ev), destroy?() }>
import { ApiError, connectLive, rpc, rpcBatch } from './api.js';
import { debounce, h } from './dom.js';
import { forgetPageSecret, pageSecret, signInHelp, signOut } from './session.js';
import * as inbox from './views/inbox.js';
import * as search from './views/search.js';
import * as read from './views/read.js';
import * as chats from './views/chats.js';
import * as chat from './views/chat.js';
import * as compose from './views/compose.js';
import * as drafts from './views/drafts.js';
import * as outbox from './views/outbox.js';
import * as contacts from './views/contacts.js';
import * as contact from './views/contact.js';
import * as mailboxes from './views/mailboxes.js';
import * as status from './views/status.js';

const VIEWS = {
  inbox, archive: inbox, search, read, chats, chat, compose, drafts, outbox, sent: outbox, contacts, contact, mailboxes, status,
};
/** Which nav entry a route belongs to. */
const SECTION = { archive: 'inbox', search: 'inbox', read: 'inbox', chat: 'chats', drafts: 'compose', sent: 'outbox', contact: 'contacts' };
const NOTIFY_KEY = 'onionpost.notifications';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const conn = document.getElementById('conn');
const alerts = document.getElementById('alerts');
const announcer = document.getElementById('announcer');

let current = null;
let renderSeq = 0;
let loggedOut = false;
let live = null;
let toastTimer = null;
let unreadCount = 0;
let viewTitle = 'onionpost';

/**
 * The signed-out page, shown when the API answers 401: why (never signed in, session ended, signed
 * out) and the command that prints a fresh login link. Nothing else of the UI stays on screen.
 */
function showLoggedOut(reason) {
  if (loggedOut) return;
  loggedOut = true;
  live?.stop();
  current?.destroy?.();
  current = null;
  nav.hidden = true;
  conn.hidden = true;
  alerts.replaceChildren();
  if (reason !== 'signed-out') forgetPageSecret();
  document.title = 'Sign in · onionpost';
  main.replaceChildren(signInHelp(reason));
  main.querySelector('h1').focus();
}

const SIGNED_OUT = new Set(['UNAUTHORIZED', 'SESSION_ENDED']);

/** Wraps API calls so that any 401 switches to the sign-in page. */
async function guarded(p) {
  try {
    return await p;
  } catch (err) {
    if (err instanceof ApiError && SIGNED_OUT.has(err.code)) showLoggedOut(err.code === 'SESSION_ENDED' || pageSecret() ? 'ended' : 'none');
    throw err;
  }
}

/** Says something to screen readers and shows it briefly as a toast. */
function announce(text) {
  announcer.textContent = text;
  announcer.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => announcer.classList.remove('show'), 5000);
}

/** A nav badge: hidden at 0; its visible text plus words for screen readers. */
function setBadge(el, count, visible, spoken) {
  el.hidden = count === 0;
  el.dataset.count = String(count);
  el.replaceChildren(visible, h('span', { class: 'visually-hidden' }, spoken));
}

/** The tab title: the view's, with the unread count in front when there is mail to read. */
function setTitle() {
  document.title = `${unreadCount > 0 ? `(${unreadCount}) ` : ''}${viewTitle} · onionpost`;
}

let globalsAsked = 0;
/** Header state that every view shares: unread count (also in the tab title), held count, key-change banner. */
const refreshGlobals = debounce(async () => {
  const mine = ++globalsAsked;
  let st;
  try {
    st = await guarded(rpc('node.status'));
  } catch {
    return;
  }
  // Answers can overtake each other; an older count must not stay on screen over a newer one.
  if (mine !== globalsAsked) return;
  const unread = st.counts?.unread ?? 0;
  unreadCount = unread;
  setTitle();
  setBadge(nav.querySelector('[data-testid="unread-count"]'), unread, String(unread), ' unread');
  const held = st.counts?.held ?? 0;
  setBadge(nav.querySelector('[data-testid="stuck-count"]'), held, String(held), ` held message${held === 1 ? '' : 's'}`);
  const keyWarnings = (st.warnings ?? []).filter((w) => w.type === 'contact.keyChange');
  setBadge(nav.querySelector('[data-testid="keychange-count"]'), keyWarnings.length, '!', ` ${keyWarnings.length} key change${keyWarnings.length === 1 ? '' : 's'} to review`);
  alerts.replaceChildren(...keyWarnings.map((w) =>
    h('div', { class: 'banner warn', role: 'alert', testid: 'global-keychange' },
      h('strong', {}, 'Key change: '), w.message, /[.!?]$/.test(w.message) ? ' ' : '. ',
      h('a', { href: '#/contacts' }, 'Review in Contacts'))));
}, 50);

/** Desktop notifications: only after the user turned them on here and the browser allowed them. */
const notifications = {
  supported: typeof Notification !== 'undefined',
  get enabled() {
    return this.supported && Notification.permission === 'granted' && localStorage.getItem(NOTIFY_KEY) === 'on';
  },
  /** Asks the browser (a user gesture must lead here); resolves to the new enabled state. */
  async enable() {
    if (!this.supported) return false;
    const p = Notification.permission === 'granted' ? 'granted' : await Notification.requestPermission();
    if (p === 'granted') localStorage.setItem(NOTIFY_KEY, 'on');
    return this.enabled;
  },
  disable() {
    localStorage.setItem(NOTIFY_KEY, 'off');
  },
  show(title, body, hash) {
    if (!this.enabled || !document.hidden) return;
    // No message text in the notification: the OS may keep or show it elsewhere. Sender and subject only.
    const n = new Notification(title, { body, tag: 'onionpost', icon: '/favicon.svg' });
    n.onclick = () => {
      window.focus();
      location.hash = hash;
      n.close();
    };
  },
};

const ctx = {
  rpc: (method, params) => guarded(rpc(method, params)),
  batch: (calls) => guarded(rpcBatch(calls)),
  announce,
  refreshGlobals,
  notifications,
  navigate: (hash) => {
    location.hash = hash;
  },
  /** This node's onion, filled in at boot. */
  self: null,
};

function parseRoute() {
  const raw = location.hash.startsWith('#/') ? location.hash.slice(2) : 'inbox';
  const [path, query = ''] = raw.split('?');
  const [name, ...rest] = path.split('/');
  const known = Object.hasOwn(VIEWS, name);
  return { name: known ? name : 'inbox', arg: rest.length ? decodeURIComponent(rest.join('/')) : null, query: new URLSearchParams(query) };
}

function markNav(name) {
  const section = SECTION[name] ?? name;
  for (const a of nav.querySelectorAll('a[data-nav]')) {
    if (a.dataset.nav === section) {
      a.setAttribute('aria-current', 'page');
      // On a narrow screen the nav scrolls sideways: keep the current entry in sight.
      a.scrollIntoView({ block: 'nearest', inline: 'nearest' });
    } else a.removeAttribute('aria-current');
  }
}

function errorView(err) {
  return {
    title: 'Error',
    el: h('section', { class: 'view' },
      h('h1', { tabindex: -1 }, 'Something went wrong'),
      h('p', { class: 'error', role: 'alert', testid: 'view-error' }, err instanceof ApiError ? `${err.message} (${err.code})` : String(err?.message ?? err)),
      h('p', {}, h('a', { href: '#/inbox' }, 'Back to the inbox'))),
  };
}

/** Renders the route's view; moves focus to its heading when the user navigated. */
async function show({ focus = true } = {}) {
  if (loggedOut) return;
  const route = parseRoute();
  const seq = ++renderSeq;
  markNav(route.name);
  let view;
  try {
    view = await VIEWS[route.name].mount(ctx, route);
  } catch (err) {
    if (loggedOut) return;
    view = errorView(err);
  }
  if (seq !== renderSeq || loggedOut) {
    view.destroy?.();
    return;
  }
  current?.destroy?.();
  current = view;
  main.replaceChildren(view.el);
  main.dataset.view = route.name;
  viewTitle = view.title;
  setTitle();
  if (focus) (view.el.querySelector('h1') ?? main).focus();
}

function onEvent(ev) {
  if (ev.type === 'message.received') {
    const who = ev.fromName || 'an unknown sender';
    announce(`New ${ev.kind === 'chat' ? 'chat message' : 'mail'} from ${who}${ev.subject ? `: ${ev.subject}` : ''}`);
    notifications.show(`${ev.kind === 'chat' ? 'Chat' : 'Mail'} from ${who}`, ev.kind === 'chat' ? '' : (ev.subject ?? ''), ev.kind === 'chat' ? `#/chat/${encodeURIComponent(ev.from)}` : `#/read/${ev.id}`);
    refreshGlobals();
  } else if (ev.type === 'message.state') {
    refreshGlobals();
    if (ev.state === 'delivered') announce('Message delivered.');
    else if (ev.state === 'failed') announce(`Message failed${ev.reason ? `: ${ev.reason}` : ''}.`);
    else if (ev.state === 'held') announce('Message held until you review a key change.');
  } else if (ev.type === 'peer.named' || ev.type === 'message.deleted') {
    // A sender's name was verified, or a message went: what is on screen may name or list it.
    current?.refresh?.();
    refreshGlobals();
  } else if (ev.type === 'contact.keyChange') {
    announce(`Warning: ${ev.alias}'s keys changed. Messages to them are held.`);
    refreshGlobals();
  } else if (ev.type === 'contact.rotated') {
    announce(`${ev.alias} moved to a new address, vouched for by their old key. Messages to them follow.`);
    refreshGlobals();
  }
  current?.onEvent?.(ev);
}

function onLiveState(state, { reconnected }) {
  // A refused upgrade looks like any dropped connection; one API call tells a dead session apart.
  if (state === 'offline') void guarded(rpc('node.address')).catch(() => {});
  conn.dataset.state = state;
  conn.querySelector('.conn-text').textContent = state === 'live' ? 'Live' : state === 'connecting' ? 'Connecting…' : 'Offline, retrying…';
  conn.title = state === 'live' ? 'Receiving updates from your node' : 'Not connected to your node; updates resume when it is back';
  if (state === 'live' && reconnected) {
    // Events may have been missed while away: reload what is on screen.
    refreshGlobals();
    current?.refresh?.();
  }
}

async function boot() {
  document.querySelector('[data-skip]').addEventListener('click', (e) => {
    e.preventDefault();
    main.focus();
  });
  document.querySelector('[data-testid="sign-out"]').addEventListener('click', async () => {
    await signOut().catch(() => {});
    showLoggedOut('signed-out');
  });
  let st;
  try {
    st = await guarded(rpc('node.status'));
  } catch (err) {
    if (!loggedOut) main.replaceChildren(errorView(err).el);
    return;
  }
  ctx.self = st.onion;
  nav.hidden = false;
  conn.hidden = false;
  refreshGlobals();
  live = connectLive({ onEvent, onState: onLiveState });
  addEventListener('hashchange', () => show());
  await show({ focus: false });
}

void boot();
