// Search (#/search?q=…): messages both ways whose sender, subject or body contain every word
// typed (word prefixes; case and accents ignored), and those of a contact whose name starts with it.
import { h, peerEl, timeEl } from '../dom.js';
import { searchForm } from './inbox.js';

function resultItem(m) {
  const href = m.kind === 'chat' ? `#/chat/${encodeURIComponent(m.direction === 'out' ? m.to : m.from)}` : `#/read/${m.id}`;
  return h('li', {},
    h('a', { href, class: 'thread result-row', testid: 'search-result', 'data-id': m.id },
      h('span', { class: 'dot', 'aria-hidden': 'true' }),
      h('span', { class: 'from' }, m.direction === 'out' ? 'To ' : '', peerEl(m)),
      h('span', { class: 'subject' }, m.kind === 'chat' ? h('span', { class: 'tag' }, 'chat') : null, ' ', m.subject || (m.kind === 'chat' ? '' : '(no subject)')),
      h('span', { class: 'preview' }, m.preview ?? ''),
      timeEl(m.receivedAt ?? m.createdAt)));
}

export async function mount(ctx, route) {
  const q = route.query.get('q') ?? '';
  const results = q ? await ctx.rpc('messages.search', { query: q, limit: 200 }) : [];
  const el = h('section', { class: 'view' },
    h('div', { class: 'view-head' },
      h('a', { class: 'back', href: '#/inbox' }, '← Inbox'),
      h('h1', { tabindex: -1 }, 'Search')),
    h('div', { class: 'toolbar' }, searchForm(ctx, q)),
    h('p', { class: 'muted', testid: 'search-summary', 'aria-live': 'polite' },
      q ? `${results.length === 0 ? 'No' : results.length} message${results.length === 1 ? '' : 's'} found for “${q}”.` : 'Type words to look for.'),
    results.length ? h('ul', { class: 'threads', testid: 'search-results' }, results.map(resultItem)) : null);
  return { el, title: q ? `Search: ${q}` : 'Search' };
}
