// Outbox: every sent message with its live delivery state.
import { debounce, h, peerName, setStateBadge, stateBadge, timeEl } from '../dom.js';

function row(m, names) {
  return h('tr', { testid: 'outbox-row', 'data-id': m.id },
    h('td', {}, h('span', { title: m.to }, peerName(m, names))),
    h('td', { class: 'subject' }, m.subject || '(no subject)', m.kind === 'chat' ? h('span', { class: 'tag' }, 'chat') : null),
    h('td', {}, stateBadge(m.state, 'outbox-state'), h('span', { class: 'reason', testid: 'outbox-reason' }, m.reason ?? '')),
    h('td', { class: 'num' }, String(m.attempts ?? 0)),
    h('td', {}, timeEl(m.createdAt)));
}

export async function mount(ctx) {
  const tbody = h('tbody', {});
  const table = h('table', { class: 'table', testid: 'outbox-table' },
    h('caption', { class: 'visually-hidden' }, 'Sent messages, newest first, with their delivery state'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'To'), h('th', { scope: 'col' }, 'Subject'), h('th', { scope: 'col' }, 'State'),
      h('th', { scope: 'col', class: 'num' }, 'Tries'), h('th', { scope: 'col' }, 'Sent'))),
    tbody);
  const empty = h('p', { class: 'empty', hidden: true, testid: 'outbox-empty' }, 'Nothing sent yet.');
  const legend = h('p', { class: 'muted legend' },
    'Queued → Sending → Delivered once the recipient signs a receipt. Held: waiting for you to approve a key change. ',
    'Failed and Expired say why.');
  const el = h('section', { class: 'view' },
    h('div', { class: 'view-head' }, h('h1', { tabindex: -1 }, 'Outbox'), h('a', { class: 'button primary', href: '#/compose' }, 'Compose')),
    table, empty, legend);

  async function refresh() {
    const [msgs, names] = await Promise.all([ctx.rpc('messages.outbox', { limit: 500 }), ctx.contactNames()]);
    tbody.replaceChildren(...msgs.map((m) => row(m, names)));
    empty.hidden = msgs.length > 0;
    table.hidden = msgs.length === 0;
  }
  const again = debounce(() => void refresh().catch(() => {}), 50);

  await refresh();
  return {
    el,
    title: 'Outbox',
    refresh: again,
    onEvent(ev) {
      if (ev.type !== 'message.state') return;
      const tr = tbody.querySelector(`tr[data-id="${CSS.escape(ev.id)}"]`);
      if (!tr) return again();
      setStateBadge(tr.querySelector('[data-testid="outbox-state"]'), ev.state);
      tr.querySelector('[data-testid="outbox-reason"]').textContent = ev.state !== 'delivered' && ev.reason ? ev.reason : '';
      // Attempts and the final reason come from the store; fetch them once the burst settles.
      again();
    },
  };
}
