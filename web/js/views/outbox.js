// Outbox (#/outbox) and Sent (#/sent). The outbox lists what is not delivered yet or never will
// be, each with why in plain words, from the node's record of its attempts ("bob's node has been
// offline since 14:02; next try in 3 min"), and what can be done: retry now, cancel, open. Sent
// lists what was delivered. Cards, not a table, so that a phone screen holds them.
import { ApiError } from '../api.js';
import { debounce, deliveryText, h, peerEl, stateBadge, timeEl } from '../dom.js';

function card(ctx, m, refresh) {
  const status = h('p', { class: 'error', role: 'alert', hidden: true });
  const act = (label, testid, method, done) => {
    const b = h('button', { type: 'button', class: 'small', testid }, label);
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        await ctx.rpc(method, { id: m.id });
        ctx.announce(done);
        await refresh();
      } catch (err) {
        b.disabled = false;
        status.hidden = false;
        status.textContent = err instanceof ApiError ? err.message : String(err?.message ?? err);
      }
    });
    return b;
  };
  const why = deliveryText(m);
  return h('li', { class: `card outbox-item state-border-${m.state}`, testid: 'outbox-row', 'data-id': m.id, 'data-state': m.state },
    h('div', { class: 'outbox-line' },
      h('span', { class: 'outbox-to' }, 'To ', h('strong', {}, peerEl(m, 'outbox-to'))),
      timeEl(m.createdAt)),
    h('div', { class: 'outbox-subject' }, m.subject || (m.kind === 'chat' ? '' : '(no subject)'), m.kind === 'chat' ? h('span', { class: 'tag' }, 'chat') : null,
      m.attachmentCount ? h('span', { class: 'tag files-tag' }, `${m.attachmentCount} file${m.attachmentCount === 1 ? '' : 's'}`) : null),
    h('div', { class: 'outbox-state' }, stateBadge(m.state, 'outbox-state'),
      h('span', { class: 'reason', testid: 'outbox-reason' }, m.state === 'delivered' ? '' : why)),
    h('div', { class: 'actions' },
      m.state === 'queued' && m.attempts > 0 ? act('Retry now', 'retry-now', 'messages.retryNow', 'Trying again now.') : null,
      m.state === 'queued' || m.state === 'held' ? act('Cancel', 'cancel', 'messages.cancel', 'Message cancelled.') : null,
      m.state === 'held' ? h('a', { class: 'button small', href: '#/contacts' }, 'Review key change') : null,
      h('a', { class: 'button small', href: `#/read/${m.id}`, testid: 'open' }, 'Open')),
    status);
}

export async function mount(ctx, route) {
  const sent = route.name === 'sent';
  const list = h('ul', { class: 'outbox-list', testid: 'outbox-table' });
  const empty = h('p', { class: 'empty', hidden: true, testid: 'outbox-empty' }, sent ? 'Nothing delivered yet.' : 'Nothing waiting: everything you sent was delivered.');
  const legend = sent ? null : h('p', { class: 'muted legend' },
    'Queued: waiting for the next try. Held: waiting for you to review a key change. Failed and Expired say why.');
  const el = h('section', { class: 'view' },
    h('div', { class: 'view-head' },
      h('h1', { tabindex: -1 }, sent ? 'Sent' : 'Outbox'),
      h('a', { class: 'button primary', href: '#/compose' }, 'Compose')),
    h('nav', { class: 'tabs', 'aria-label': 'Sent messages' },
      h('a', { href: '#/outbox', 'aria-current': sent ? null : 'page', testid: 'tab-outbox' }, 'Waiting and failed'),
      h('a', { href: '#/sent', 'aria-current': sent ? 'page' : null, testid: 'tab-sent' }, 'Delivered')),
    list, empty, legend);

  let msgs = [];
  let asked = 0;
  async function refresh() {
    const mine = ++asked;
    const got = await ctx.rpc('messages.outbox', { limit: 500, view: sent ? 'delivered' : 'pending' });
    // Answers can overtake each other; an older one must not paint over a newer one.
    if (mine !== asked) return;
    msgs = got;
    list.replaceChildren(...msgs.map((m) => card(ctx, m, refresh)));
    empty.hidden = msgs.length > 0;
    list.hidden = msgs.length === 0;
  }
  const again = debounce(() => void refresh().catch(() => {}), 50);
  // "next try in 3 min" counts down.
  const ticker = setInterval(() => {
    for (const m of msgs) {
      const r = list.querySelector(`[data-id="${CSS.escape(m.id)}"] [data-testid="outbox-reason"]`);
      if (r && m.state === 'queued') r.textContent = deliveryText(m);
    }
  }, 15_000);

  await refresh();
  return {
    el,
    title: sent ? 'Sent' : 'Outbox',
    refresh: again,
    onEvent(ev) {
      // A row's state, its reason and its buttons are redrawn together from the store: flipping
      // only the badge here showed e.g. "Failed" next to "offline; next try in 2 min" and a Retry
      // button until the fetch came back.
      if (ev.type === 'message.state') again();
    },
    destroy() {
      clearInterval(ticker);
    },
  };
}
