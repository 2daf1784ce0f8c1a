// Small DOM and formatting helpers. Every piece of peer-supplied text goes in through
// textContent (via h()), never innerHTML.

/**
 * h('a', {href: '#/x', class: 'c', testid: 'x', onclick: f}, 'text', child, [more])
 * Attributes that are null, undefined or false are left out; true gives an empty attribute.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'testid') el.setAttribute('data-testid', v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** "abcdefgh…wxyz.onion", for lists; the full address goes in a title or a detail view. */
export function shortOnion(onion) {
  if (!onion) return '';
  const bare = onion.replace(/\.onion$/, '');
  return bare.length > 16 ? `${bare.slice(0, 8)}…${bare.slice(-4)}.onion` : onion;
}

/**
 * Who a message is from or to, as the node names them: the contact alias or the verified registry
 * name (`fromName` / `toName`), else the short onion. `known` is false for a stranger.
 */
export function peer(m) {
  const out = m.direction === 'out';
  const name = out ? m.toName : m.fromName;
  const onion = out ? m.to : m.from;
  return { name: name || shortOnion(onion), known: Boolean(name), onion, fingerprint: m.peerFingerprint ?? '' };
}

/** The peer's name as an element: a stranger shows as short onion + fingerprint, with the full onion in the title. */
export function peerEl(m, testid) {
  const p = peer(m);
  if (p.known) return h('span', { class: 'peer', title: p.onion, testid }, p.name);
  return h('span', { class: 'peer unknown', title: p.onion, testid, 'data-unknown': 'true' },
    h('span', { class: 'onion-short' }, p.name),
    p.fingerprint ? h('span', { class: 'fp-short', title: 'Start of their identity key' }, ` · ${p.fingerprint}`) : null);
}

/** A key as groups of four hex digits, for reading aloud and comparing by eye. */
export function fingerprint(hex) {
  return (hex ?? '').toLowerCase().match(/.{1,4}/g)?.join(' ') ?? '';
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const yearFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
const weekdayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** "14:02" today, "Yesterday", "Tue" within the week, "3 Nov" this year, "3 Nov 2025" before. */
export function dateLabel(ms, now = Date.now()) {
  const d = new Date(ms);
  const today = new Date(now);
  if (d.toDateString() === today.toDateString()) return timeFmt.format(d);
  const days = Math.round((new Date(today.toDateString()) - new Date(d.toDateString())) / 86_400_000);
  if (days === 1) return 'Yesterday';
  if (days > 1 && days < 7) return weekdayFmt.format(d);
  return d.getFullYear() === today.getFullYear() ? dateFmt.format(d) : yearFmt.format(d);
}

/** A <time> element labelled by dateLabel; the full date and time in its title. */
export function timeEl(ms, testid) {
  if (!ms) return h('span', { class: 'when' }, '');
  const d = new Date(ms);
  return h('time', { class: 'when', datetime: d.toISOString(), title: fullFmt.format(d), testid }, dateLabel(ms));
}

/** Clock time, "14:02". */
export function clockTime(ms) {
  return timeFmt.format(new Date(ms));
}

/** "in 3 min", "in 40 s", "in 2 h", "now": how long until `ms`. */
export function inWords(ms, now = Date.now()) {
  const s = Math.round((ms - now) / 1000);
  if (s <= 1) return 'now';
  if (s < 60) return `in ${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `in ${m} min`;
  const hrs = Math.round(m / 60);
  return hrs < 48 ? `in ${hrs} h` : `in ${Math.round(hrs / 24)} days`;
}

/** "12.0 KiB", "1.4 MiB", "300 B". */
export function bytesLabel(n) {
  if (n < 1024) return `${n} B`;
  // One decimal: the limit (255.8 KiB) must not read as 256.
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** A File's bytes as base64 (what the API takes for attachments). */
export async function fileToBase64(file) {
  const buf = new Uint8Array(await file.arrayBuffer());
  let bin = '';
  for (let i = 0; i < buf.length; i += 0x8000) bin += String.fromCharCode(...buf.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** base64 → Blob, for downloading an attachment. */
export function base64ToBlob(b64, type) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return new Blob([out], { type: type || 'application/octet-stream' });
}

/** UTF-8 length of a string (what the message capacity counts). */
export function utf8Length(s) {
  return new TextEncoder().encode(s ?? '').length;
}

export const STATE_LABELS = {
  queued: 'Queued',
  sending: 'Sending',
  in_mailbox: 'In mailbox',
  delivered: 'Delivered',
  failed: 'Failed',
  held: 'Held',
  expired: 'Expired',
  received: 'Received',
};

/** Outgoing states that still need the user's attention or patience (not a success). */
export const WAITING_STATES = new Set(['queued', 'sending', 'in_mailbox', 'held']);
/** A delivery-state badge; its text is the state word, so colour is never the only cue. */
export function stateBadge(state, testid) {
  return h('span', { class: `state state-${state}`, testid, 'data-state': state }, STATE_LABELS[state] ?? state);
}

/** Sets a badge element from a state (keeps the element, so focus and references survive). */
export function setStateBadge(el, state) {
  el.className = `state state-${state}`;
  el.dataset.state = state;
  el.textContent = STATE_LABELS[state] ?? state;
}

/** Copies text; falls back to selecting it when the clipboard API is unavailable. */
export async function copyText(text, selectEl) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (selectEl) {
      const range = document.createRange();
      range.selectNodeContents(selectEl);
      const sel = getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
    }
    return false;
  }
}

/**
 * A destructive button's confirmation step: `ask` hides itself and shows `question`, `confirm` and
 * `cancel` (which gets the focus); `cancel` goes back. `confirm`'s own click does the work.
 */
export function confirmStep(ask, question, confirm, cancel) {
  const asking = (yes) => {
    ask.hidden = yes;
    confirm.hidden = cancel.hidden = question.hidden = !yes;
    (yes ? cancel : ask).focus();
  };
  ask.addEventListener('click', () => asking(true));
  cancel.addEventListener('click', () => asking(false));
}

/** Runs `fn` at most once per `ms`, trailing (for bursts of events). */
export function debounce(fn, ms = 100) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

/** "Re: x" once, not "Re: Re: x". */
export function replySubject(subject) {
  const s = subject ?? '';
  return /^re:/i.test(s) ? s : `Re: ${s}`.trim();
}

/** "14:02" today, else "3 Nov, 14:02". */
export function sinceLabel(ms) {
  const d = new Date(ms);
  return d.toDateString() === new Date().toDateString() ? timeFmt.format(d) : `${dateFmt.format(d)}, ${timeFmt.format(d)}`;
}

/**
 * Why an outgoing message is where it is, in plain words, from the node's `delivery` view of its
 * stored attempts: "bob's node has been offline since 14:02; next try in 3 min".
 */
export function deliveryText(m, now = Date.now()) {
  const d = m.delivery;
  if (!d) return m.reason ?? '';
  let t = d.words;
  if (d.since) t += ` since ${sinceLabel(d.since)}`;
  if (m.state === 'queued' && d.nextAttemptAt) t += d.nextAttemptAt <= now ? '; trying again now' : `; next try ${inWords(d.nextAttemptAt, now)}`;
  return t;
}
