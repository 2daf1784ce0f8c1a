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
 * Who a message is from or to: the contact's current alias if `names` (onion → alias) knows the
 * peer, else the label stored with the message, else the short onion.
 */
export function peerName(m, names) {
  const onion = m.direction === 'out' ? m.to : m.from;
  return names?.get(onion) || m.peerLabel || shortOnion(onion);
}

/** A key as groups of four hex digits, for reading aloud and comparing by eye. */
export function fingerprint(hex) {
  return (hex ?? '').toLowerCase().match(/.{1,4}/g)?.join(' ') ?? '';
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** A <time> element: clock time today, date otherwise; the full date in its title. */
export function timeEl(ms) {
  if (!ms) return h('span', { class: 'when' }, '');
  const d = new Date(ms);
  const today = new Date().toDateString() === d.toDateString();
  return h('time', { class: 'when', datetime: d.toISOString(), title: fullFmt.format(d) }, today ? timeFmt.format(d) : dateFmt.format(d));
}

export const STATE_LABELS = {
  queued: 'Queued',
  sending: 'Sending',
  delivered: 'Delivered',
  failed: 'Failed',
  held: 'Held',
  expired: 'Expired',
  received: 'Received',
};

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
