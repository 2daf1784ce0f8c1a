// Drafts (#/drafts): messages being written, kept on the node (they survive restarts), most
// recently edited first. Open one to go on writing; delete the ones you do not want.
import { debounce, h, timeEl } from '../dom.js';

export async function mount(ctx) {
  const list = h('ul', { class: 'threads', testid: 'draft-list' });
  const empty = h('p', { class: 'empty', hidden: true, testid: 'drafts-empty' }, 'No drafts.');
  const el = h('section', { class: 'view' },
    h('div', { class: 'view-head' },
      h('a', { class: 'back', href: '#/compose' }, '← Compose'),
      h('h1', { tabindex: -1 }, 'Drafts')),
    list, empty);
  async function refresh() {
    const ds = await ctx.rpc('drafts.list', { limit: 200 });
    list.replaceChildren(...ds.map((d) => {
      const del = h('button', { type: 'button', class: 'small', testid: 'draft-delete', 'aria-label': `Delete draft ${d.subject || 'without subject'}` }, 'Delete');
      del.addEventListener('click', async () => {
        await ctx.rpc('drafts.delete', { id: d.id });
        await refresh();
      });
      return h('li', { class: 'draft-row' },
        h('a', { href: `#/compose?draft=${d.id}`, class: 'thread', testid: 'draft', 'data-id': d.id },
          h('span', { class: 'dot', 'aria-hidden': 'true' }),
          h('span', { class: 'from' }, d.to ? `To ${d.to}` : '(no recipient)'),
          h('span', { class: 'subject' }, d.subject || '(no subject)', d.attachments?.length ? h('span', { class: 'tag files-tag' }, `${d.attachments.length} file${d.attachments.length === 1 ? '' : 's'}`) : null),
          h('span', { class: 'preview' }, d.preview ?? ''),
          timeEl(d.updatedAt)),
        del);
    }));
    list.hidden = ds.length === 0;
    empty.hidden = ds.length > 0;
  }
  await refresh();
  return { el, title: 'Drafts', refresh: debounce(() => void refresh().catch(() => {}), 50) };
}
