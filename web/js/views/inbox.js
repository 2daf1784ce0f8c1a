// Inbox: received messages grouped into threads, newest thread first, unread ones marked.
import { debounce, h, peerName, timeEl } from '../dom.js';

/** Groups a newest-first message list by thread, keeping newest-first order of threads. */
function threads(msgs) {
  const by = new Map();
  for (const m of msgs) {
    const key = m.threadId ?? m.id;
    let t = by.get(key);
    if (!t) by.set(key, (t = { latest: m, first: m, count: 0, unread: 0 }));
    t.count++;
    if (!m.read) t.unread++;
    t.first = m;
  }
  const at = (m) => m.receivedAt ?? m.createdAt ?? 0;
  return [...by.values()].sort((a, b) => at(b.latest) - at(a.latest));
}

function threadItem(t, fresh, names) {
  const m = t.latest;
  const subject = t.first.subject || m.subject || '(no subject)';
  return h('li', {},
    h('a', { href: `#/read/${m.id}`, class: `thread${t.unread ? ' unread' : ''}${fresh ? ' fresh' : ''}`, testid: 'thread', 'data-id': m.id, 'data-unread': t.unread ? 'true' : 'false' },
      h('span', { class: 'dot', 'aria-hidden': 'true' }),
      t.unread ? h('span', { class: 'visually-hidden' }, 'Unread. ') : null,
      h('span', { class: 'from', testid: 'thread-from' }, peerName(m, names)),
      h('span', { class: 'subject' },
        h('span', { testid: 'thread-subject' }, subject),
        t.count > 1 ? h('span', { class: 'count', 'aria-label': `${t.count} messages` }, ` ${t.count}`) : null),
      m.kind === 'chat' ? h('span', { class: 'tag' }, 'chat') : h('span', { class: 'tag empty' }),
      timeEl(m.receivedAt ?? m.createdAt)));
}

export async function mount(ctx) {
  const list = h('ul', { class: 'threads', testid: 'thread-list', 'aria-labelledby': 'inbox-h' });
  const empty = h('div', { class: 'empty', testid: 'inbox-empty', hidden: true },
    h('p', {}, 'No messages yet.'),
    h('p', { class: 'muted' }, 'People reach you at your onion address, shown on the ', h('a', { href: '#/status' }, 'Status'), ' page.'));
  const el = h('section', { class: 'view' },
    h('div', { class: 'view-head' },
      h('h1', { id: 'inbox-h', tabindex: -1 }, 'Inbox'),
      h('a', { class: 'button primary', href: '#/compose', testid: 'compose-button' }, 'Compose')),
    list, empty);

  async function refresh(freshId) {
    const [msgs, names] = await Promise.all([ctx.rpc('messages.inbox', { limit: 500 }), ctx.contactNames()]);
    const ts = threads(msgs);
    list.replaceChildren(...ts.map((t) => threadItem(t, freshId && t.latest.id === freshId, names)));
    empty.hidden = ts.length > 0;
    list.hidden = ts.length === 0;
  }
  const onReceived = debounce((id) => void refresh(id).catch(() => {}), 50);

  await refresh();
  return {
    el,
    title: 'Inbox',
    refresh: () => refresh().catch(() => {}),
    onEvent(ev) {
      if (ev.type === 'message.received') onReceived(ev.id);
    },
  };
}
