// Inbox (#/inbox) and Archive (#/archive): received mail grouped into threads, newest thread
// first, with who it is from (contact alias or verified registry name; a stranger as a short
// onion and fingerprint), a preview line, the date, files and unread marks. Chat lives in Chats.
import { debounce, h, peerEl, timeEl } from '../dom.js';

/** Groups a newest-first message list by thread, keeping newest-first order of threads. */
function threads(msgs) {
  const by = new Map();
  for (const m of msgs) {
    const key = m.threadId ?? m.id;
    let t = by.get(key);
    if (!t) by.set(key, (t = { latest: m, first: m, count: 0, unread: 0, files: 0 }));
    t.count++;
    if (!m.read) t.unread++;
    t.files += m.attachmentCount ?? 0;
    t.first = m;
  }
  const at = (m) => m.receivedAt ?? m.createdAt ?? 0;
  return [...by.values()].sort((a, b) => at(b.latest) - at(a.latest));
}

function threadItem(t, fresh) {
  const m = t.latest;
  const subject = t.first.subject || m.subject || '(no subject)';
  return h('li', {},
    h('a', { href: `#/read/${m.id}`, class: `thread${t.unread ? ' unread' : ''}${fresh ? ' fresh' : ''}`, testid: 'thread', 'data-id': m.id, 'data-unread': t.unread ? 'true' : 'false' },
      h('span', { class: 'dot', 'aria-hidden': 'true' }),
      t.unread ? h('span', { class: 'visually-hidden' }, 'Unread. ') : null,
      h('span', { class: 'from' }, peerEl(m, 'thread-from')),
      h('span', { class: 'subject' },
        h('span', { testid: 'thread-subject' }, subject),
        t.count > 1 ? h('span', { class: 'count', 'aria-label': `${t.count} messages` }, ` ${t.count}`) : null,
        t.files ? h('span', { class: 'tag files-tag', testid: 'thread-files' }, `${t.files} file${t.files === 1 ? '' : 's'}`) : null),
      h('span', { class: 'preview', testid: 'thread-preview' }, m.preview ?? ''),
      timeEl(m.receivedAt ?? m.createdAt, 'thread-date')));
}

/** The search box shared by the inbox and the search results (submits to #/search?q=…). */
export function searchForm(ctx, value = '') {
  const input = h('input', { type: 'search', name: 'q', value, placeholder: 'Search mail and chat', 'aria-label': 'Search mail and chat', autocomplete: 'off', testid: 'search-input' });
  const form = h('form', { class: 'search', role: 'search', testid: 'search-form' }, input,
    h('button', { type: 'submit', class: 'small' }, 'Search'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = input.value.trim();
    if (q) ctx.navigate(`#/search?q=${encodeURIComponent(q)}`);
  });
  return form;
}

export async function mount(ctx, route) {
  const archived = route.name === 'archive';
  const list = h('ul', { class: 'threads', testid: 'thread-list', 'aria-labelledby': 'inbox-h' });
  const empty = h('div', { class: 'empty', testid: 'inbox-empty', hidden: true },
    archived
      ? h('p', {}, 'Nothing archived.')
      : [h('p', {}, 'No mail yet.'),
        h('p', { class: 'muted' }, 'People reach you at your onion address, shown on the ', h('a', { href: '#/status' }, 'Status'), ' page.')]);
  const el = h('section', { class: 'view' },
    h('div', { class: 'view-head' },
      h('h1', { id: 'inbox-h', tabindex: -1 }, archived ? 'Archive' : 'Inbox'),
      h('a', { class: 'button primary', href: '#/compose', testid: 'compose-button' }, 'Compose')),
    h('div', { class: 'toolbar' },
      searchForm(ctx),
      archived
        ? h('a', { href: '#/inbox', testid: 'to-inbox' }, '← Inbox')
        : h('a', { href: '#/archive', testid: 'to-archive' }, 'Archive')),
    list, empty);

  async function refresh(freshId) {
    const msgs = await ctx.rpc('messages.inbox', { limit: 500, kind: 'mail', archived });
    const ts = threads(msgs);
    list.replaceChildren(...ts.map((t) => threadItem(t, freshId && t.latest.id === freshId)));
    empty.hidden = ts.length > 0;
    list.hidden = ts.length === 0;
  }
  const onReceived = debounce((id) => void refresh(id).catch(() => {}), 50);

  await refresh();
  return {
    el,
    title: archived ? 'Archive' : 'Inbox',
    refresh: () => refresh().catch(() => {}),
    onEvent(ev) {
      if (ev.type === 'message.received' && ev.kind !== 'chat') onReceived(ev.id);
    },
  };
}
