// Chats (#/chats): one row per person you chat with, most recent first, with the last line and
// how many of their messages are unread. Opening one shows the conversation (#/chat/<onion>).
import { debounce, h, shortOnion, timeEl } from '../dom.js';

function row(c) {
  return h('li', {},
    h('a', { href: `#/chat/${encodeURIComponent(c.peer)}`, class: `thread chat-row${c.unread ? ' unread' : ''}`, testid: 'chat-row', 'data-peer': c.peer, 'data-unread': c.unread ? 'true' : 'false' },
      h('span', { class: 'dot', 'aria-hidden': 'true' }),
      h('span', { class: 'from', title: c.peer, testid: 'chat-name' }, c.name || shortOnion(c.peer),
        !c.name && c.fingerprint ? h('span', { class: 'fp-short' }, ` · ${c.fingerprint}`) : null),
      h('span', { class: 'subject' }, c.unread ? h('span', { class: 'badge', 'aria-label': `${c.unread} unread` }, String(c.unread)) : null),
      h('span', { class: 'preview' }, c.lastDirection === 'out' ? 'You: ' : '', c.preview ?? ''),
      timeEl(c.lastAt)));
}

export async function mount(ctx) {
  const list = h('ul', { class: 'threads', testid: 'chat-list', 'aria-labelledby': 'chats-h' });
  const empty = h('div', { class: 'empty', hidden: true },
    h('p', {}, 'No chats yet.'),
    h('p', { class: 'muted' }, 'Start one from a contact’s page, or compose a message and choose Chat.'));
  const el = h('section', { class: 'view' },
    h('div', { class: 'view-head' },
      h('h1', { id: 'chats-h', tabindex: -1 }, 'Chats'),
      h('a', { class: 'button primary', href: '#/compose?kind=chat' }, 'New chat')),
    list, empty);
  async function refresh() {
    const cs = await ctx.rpc('messages.conversations', { limit: 200 });
    list.replaceChildren(...cs.map(row));
    list.hidden = cs.length === 0;
    empty.hidden = cs.length > 0;
  }
  const again = debounce(() => void refresh().catch(() => {}), 50);
  await refresh();
  return {
    el,
    title: 'Chats',
    refresh: again,
    onEvent(ev) {
      if ((ev.type === 'message.received' && ev.kind === 'chat') || ev.type === 'message.state') again();
    },
  };
}
