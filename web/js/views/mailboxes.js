// Mailboxes (#/mailboxes): the mailbox providers this node subscribed at (mailboxes.list: onion,
// retention, quota, when subscribed, last fetch, measured score, paid until and what it holds for
// us, and the node's warning when a priced provider's payment ends within 7 days or has ended), a
// form that subscribes at one by onion (mailboxes.add; a refusal in plain words from its code), and
// remove with a confirmation step. Below, the providers listed in the provider directory on TRON
// (providers.list: terms, price, stake, our measured score, whether we use it and what we paid,
// whether it passes the directory policy, which is shown read-only),
// each with "Use", which subscribes there (mailboxes.add). Paying is not done here: it needs a
// TRON key the node does not hold, so a priced provider shows the command that pays it.
import { ApiError } from '../api.js';
import { confirmStep, h, timeEl } from '../dom.js';
import { copyOnion } from './contacts.js';

const DAY = 24 * 3600 * 1000;
const MB = 1024 * 1024;

/** 14 → "14 days", 1.5 → "1.5 days". */
function days(ms) {
  const d = ms / DAY;
  return `${Number.isInteger(d) ? d : d.toFixed(1)} day${d === 1 ? '' : 's'}`;
}

function megabytes(bytes) {
  const m = bytes / MB;
  return `${Number.isInteger(m) ? m : m.toFixed(1)} MB`;
}

/** Why mailboxes.add was refused, in plain words, by the node's error code (src/node/errors.ts). */
export function refusalWords(err, onion) {
  if (!(err instanceof ApiError)) return String(err?.message ?? err);
  switch (err.code) {
    case 'NOT_PAID': return `This provider is paid: pay it first (onionpost providers pay ${onion || '<onion>'} --periods 1), then add it again.`;
    case 'UNREACHABLE': return 'Cannot reach this onion: it is not online, or Tor could not connect to it. Try again later.';
    case 'NOT_A_PROVIDER': return 'This onion is online but is not a mailbox provider.';
    case 'BAD_ADDRESS': return 'That is not a v3 .onion address (56 letters and digits, then .onion).';
    case 'TOO_MANY_MAILBOXES': return 'You use 8 providers already, the most a node lists: remove one first.';
    case 'TOO_MANY_USERS': return 'This provider is full: it takes no more users.';
    case 'BAD_TERMS': return 'The provider answered with terms its key did not sign: not added.';
    case 'STALE': return 'The provider found our request too old or too new: check this computer\'s clock.';
    case 'RATE_LIMITED': case 'BUSY': return 'The provider is busy: try again in a minute.';
    case 'CLOSED': return 'Your node is stopping.';
    case 'OFFLINE': return err.message;
    default: return `The provider refused: ${err.message}`;
  }
}

/** What the node measured of a provider (mailboxes.list `reputation`), in words. */
function scoreWords(r) {
  if (!r) return 'not measured';
  const n = Object.values(r.counts).reduce((a, b) => a + b, 0);
  if (n === 0) return 'nothing seen yet';
  if (r.belowThreshold) return `${r.score.toFixed(2)}: below the line (it lost mail or could not be reached); add a spare with onionpost mailboxes spare <onion>`;
  return `${r.score.toFixed(2)}${r.proven ? '' : ' (too little seen to judge)'}${r.counts.lost ? `; ${r.counts.lost} message(s) it held expired undelivered` : ''}`;
}

/** "free", the date, "not paid", or "not asked yet" (the node asks at each fetch round). */
function paidUntil(m) {
  if (m.paidUntil === null) return 'not asked yet';
  if (m.paidUntil === 0) return 'free';
  if (m.paidUntil <= 1) return 'not paid';
  const d = new Date(m.paidUntil);
  return h('time', { datetime: d.toISOString() }, d.toISOString().slice(0, 10));
}

function held(m) {
  if (!m.held) return 'not asked yet';
  const kb = m.held.bytes / 1024;
  const size = kb < 1024 ? `${kb > 0 && kb < 10 ? kb.toFixed(1) : Math.round(kb)} KB` : megabytes(m.held.bytes);
  return `${m.held.count} message${m.held.count === 1 ? '' : 's'}, ${size} of ${megabytes(m.held.quotaBytes)}`;
}

/** The node's words, with the `command` in them shown as code. */
function warningText(text) {
  return text.split('`').map((part, i) => (i % 2 ? h('code', {}, part) : part));
}

function mailboxCard(ctx, m, refresh) {
  const status = h('p', { class: 'error', role: 'alert', hidden: true });
  const remove = h('button', { type: 'button', class: 'danger-outline', testid: 'mailbox-remove' }, 'Remove');
  const confirm = h('button', { type: 'button', class: 'danger', testid: 'mailbox-remove-confirm', hidden: true }, 'Remove it');
  const keep = h('button', { type: 'button', testid: 'mailbox-remove-cancel', hidden: true }, 'Keep it');
  const question = h('span', { class: 'confirm-text', hidden: true },
    'Stop using this provider? It leaves the bundle your node hands out.');
  confirmStep(remove, question, confirm, keep);
  confirm.addEventListener('click', async () => {
    confirm.disabled = true;
    try {
      await ctx.rpc('mailboxes.remove', { onion: m.onion });
      ctx.announce('Mailbox provider removed.');
      await refresh();
    } catch (err) {
      confirm.disabled = false;
      status.hidden = false;
      status.textContent = err instanceof ApiError ? err.message : String(err?.message ?? err);
    }
  });
  return h('li', { class: 'card mailbox', testid: 'mailbox', 'data-onion': m.onion },
    h('dl', { class: 'kv' },
      h('dt', {}, 'Onion'), copyOnion({ onion: m.onion, alias: 'this provider' }),
      h('dt', {}, 'Keeps mail'), h('dd', { testid: 'mailbox-retention' }, days(m.terms.retentionMs)),
      h('dt', {}, 'Quota'), h('dd', { testid: 'mailbox-quota' }, megabytes(m.terms.quotaBytes)),
      h('dt', {}, 'Subscribed'), h('dd', { testid: 'mailbox-subscribed' }, timeEl(m.subscribedAt)),
      h('dt', {}, 'Last fetch'), h('dd', { testid: 'mailbox-last-fetch' }, m.lastFetchAt === null ? 'never' : timeEl(m.lastFetchAt)),
      h('dt', {}, 'Measured'), h('dd', { testid: 'mailbox-score' }, scoreWords(m.reputation)),
      h('dt', {}, 'Paid until'), h('dd', { testid: 'mailbox-paid-until' }, paidUntil(m)),
      h('dt', {}, 'Holds for you'), h('dd', { testid: 'mailbox-held' }, held(m))),
    m.warning ? h('p', { class: 'result warn', role: 'status', testid: 'mailbox-warning' }, ...warningText(m.warning)) : null,
    h('div', { class: 'actions' }, remove, question, confirm, keep),
    status);
}

/** Subscribes at `onion` (mailboxes.add), saying how it went in `result`; true if it worked. */
async function subscribe(ctx, onion, result) {
  result.hidden = false;
  result.className = 'result pending';
  result.dataset.code = '';
  result.textContent = 'Subscribing…';
  try {
    const m = await ctx.rpc('mailboxes.add', { onion });
    result.className = 'result ok';
    result.textContent = `Subscribed: it keeps mail ${days(m.terms.retentionMs)}, up to ${megabytes(m.terms.quotaBytes)}.`;
    return true;
  } catch (err) {
    result.className = 'result error';
    result.dataset.code = err instanceof ApiError ? err.code : '';
    result.textContent = refusalWords(err, onion);
    return false;
  }
}

/** A directory listing (providers.list) as a card: its terms, price, stake, our view of it, and "Use". */
function listingCard(ctx, p, onUsed) {
  const result = h('p', { class: 'result', hidden: true, 'aria-live': 'polite', testid: 'directory-use-result' });
  const priced = p.terms.pricePer30Days !== '0';
  const use = p.ours ? null : h('button', { type: 'button', class: 'primary', testid: 'directory-use', 'aria-label': `Use ${p.onion}` }, 'Use');
  use?.addEventListener('click', async () => {
    use.disabled = true;
    if (!await subscribe(ctx, p.onion, result)) {
      use.disabled = false;
      return;
    }
    ctx.announce('Subscribed at the provider.');
    await onUsed();
  });
  const payCommand = `onionpost providers pay ${p.owner} --periods 1`;
  return h('li', { class: 'card mailbox', testid: 'directory-listing', 'data-onion': p.onion },
    h('dl', { class: 'kv' },
      h('dt', {}, 'Onion'), copyOnion({ onion: p.onion, alias: 'this provider' }),
      h('dt', {}, 'Keeps mail'), h('dd', { testid: 'directory-retention' }, `${p.terms.retentionDays} day${p.terms.retentionDays === 1 ? '' : 's'}`),
      h('dt', {}, 'Quota'), h('dd', { testid: 'directory-quota' }, `${p.terms.quotaMB} MB`),
      h('dt', {}, 'Price'), h('dd', { testid: 'directory-price' }, p.terms.price),
      h('dt', {}, 'Stake'), h('dd', { testid: 'directory-stake' }, `${p.stake} locked${p.status === 'leaving' ? ' (leaving the directory)' : ''}`),
      h('dt', {}, 'Measured'), h('dd', { testid: 'directory-score' }, scoreWords(p.reputation)),
      h('dt', {}, 'You'), h('dd', { testid: 'directory-ours' }, p.ours ? h('span', {}, 'use it · paid until: ', paidUntil(p)) : 'do not use it yet'),
      h('dt', {}, 'Your policy'), h('dd', { testid: 'directory-eligible' }, p.eligible ? 'eligible' : `not eligible: ${p.reason}`)),
    priced && !p.ours ? h('p', { class: 'hint', testid: 'directory-pay' },
      `It charges ${p.terms.price}: pay first, from a terminal, with `, h('code', {}, payCommand), ', then Use. Paying needs your TRON key, which your node does not hold, so this page cannot pay.') : null,
    use ? h('div', { class: 'actions' }, use) : null,
    result);
}

/** The directory section: listings, or why there are none. */
function directorySection(ctx, onUsed) {
  const list = h('ul', { class: 'mailboxes', testid: 'directory-list' });
  const note = h('p', { class: 'muted', testid: 'directory-note' }, 'Reading the provider directory…');
  // The directory policy, read-only here: `onionpost mailboxes policy` sets it.
  const policy = h('p', { class: 'hint', testid: 'directory-policy', hidden: true });
  const el = h('section', { class: 'directory', 'aria-labelledby': 'm-dir-h' },
    h('h2', { id: 'm-dir-h' }, 'Providers in the directory'),
    h('p', { class: 'muted' }, 'Providers listed on TRON with their terms and a locked stake. The score is what your node measured itself.'),
    policy, note, list);
  // An answer overtaken by a newer request's is dropped: the first read of the chain can come back
  // after the one made once "Use" subscribed, and would put "Use" back on a provider we now use.
  let asked = 0;
  async function refresh() {
    const n = ++asked;
    try {
      const page = await ctx.rpc('providers.list');
      if (n !== asked) return;
      policy.hidden = false;
      policy.replaceChildren(...(page.policy.directory
        ? [`Your node picks from the eligible ones by itself, after the spares you named, and keeps ${page.policy.target}. Change it with `, h('code', {}, 'onionpost mailboxes policy'), '.']
        : ['Your node does not pick from these by itself. To let it: ', h('code', {}, 'onionpost mailboxes policy --directory on'), '.']));
      list.replaceChildren(...page.providers.map((p) => listingCard(ctx, p, async () => {
        await onUsed();
        await refresh();
      })));
      note.hidden = page.providers.length > 0;
      note.textContent = 'No providers are listed in the directory.';
    } catch (err) {
      if (n !== asked) return;
      note.hidden = false;
      note.textContent = err instanceof ApiError && err.code === 'NO_DIRECTORY'
        ? 'Your node reads no provider directory: start it with --network (where the directory is deployed) to see the providers listed there.'
        : `Could not read the provider directory: ${err?.message ?? err}`;
    }
  }
  return { el, refresh };
}

export async function mount(ctx) {
  const list = h('ul', { class: 'mailboxes', testid: 'mailbox-list' });
  const empty = h('p', { class: 'empty', hidden: true, testid: 'mailbox-empty' },
    'No mailbox providers yet. A provider holds mail for you while your node is offline; add one by its onion below.');

  const onion = h('input', { id: 'm-onion', name: 'onion', required: true, maxlength: 100, autocomplete: 'off', spellcheck: 'false', testid: 'mailbox-address', 'aria-describedby': 'm-onion-hint' });
  const add = h('button', { type: 'submit', class: 'primary', testid: 'mailbox-add' }, 'Add');
  const addMsg = h('p', { class: 'result', hidden: true, 'aria-live': 'polite', testid: 'mailbox-add-result' });
  const form = h('form', { class: 'card form inline', 'aria-labelledby': 'm-add-h' },
    h('h2', { id: 'm-add-h' }, 'Add a provider'),
    h('div', { class: 'row' },
      h('div', { class: 'field grow' }, h('label', { for: 'm-onion' }, 'Provider onion'), onion,
        h('p', { class: 'hint', id: 'm-onion-hint' }, 'Your node subscribes there through Tor and keeps the terms the provider signs. This can take a minute.')),
      add),
    addMsg);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const address = onion.value.trim();
    add.disabled = true;
    if (await subscribe(ctx, address, addMsg)) {
      onion.value = '';
      await refresh().catch(() => {});
    }
    add.disabled = false;
  });

  const el = h('section', { class: 'view' },
    h('div', { class: 'view-head' }, h('h1', { tabindex: -1 }, 'Mailboxes')),
    h('p', { class: 'muted' }, 'Providers that hold mail for you while your node is offline. Your node lists them in the keys it hands out.'),
    list, empty, form);
  const directory = directorySection(ctx, refresh);
  el.append(directory.el);
  // The directory is read from the chain (through Tor on public networks): the page does not wait for it.
  void directory.refresh();

  async function refresh() {
    const ms = await ctx.rpc('mailboxes.list');
    list.replaceChildren(...ms.map((m) => mailboxCard(ctx, m, refresh)));
    empty.hidden = ms.length > 0;
  }

  await refresh();
  return { el, title: 'Mailboxes', refresh: () => void refresh().catch(() => {}) };
}
