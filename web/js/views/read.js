// Read: one message in its thread (oldest first), with a reply button. Opening it marks the
// thread's received messages read.
import { debounce, h, peerName, replySubject, setStateBadge, stateBadge, timeEl } from '../dom.js';

/** The compose link that replies to `m` in its thread. */
function replyHref(m) {
  const q = new URLSearchParams({
    to: m.direction === 'in' ? m.from : m.to,
    subject: replySubject(m.subject),
    thread: m.threadId ?? m.id,
    inReplyTo: m.id,
    kind: m.kind,
  });
  if (m.peerLabel) q.set('label', m.peerLabel);
  return `#/compose?${q}`;
}

function article(m, current, names) {
  const out = m.direction === 'out';
  return h('article', { class: `msg ${out ? 'out' : 'in'}${current ? ' current' : ''}`, testid: 'message', 'data-id': m.id, 'aria-current': current ? 'true' : null },
    h('header', {},
      h('span', { class: 'who' }, out ? 'You → ' : '', h('strong', { title: out ? m.to : m.from }, peerName(m, names))),
      m.kind === 'chat' ? h('span', { class: 'tag' }, 'chat') : null,
      out ? stateBadge(m.state, 'message-state') : null,
      timeEl(m.receivedAt ?? m.createdAt)),
    m.subject ? h('h2', { class: 'msg-subject' }, m.subject) : null,
    h('div', { class: 'body', testid: 'message-body' }, m.body ?? ''),
    out && m.reason ? h('p', { class: 'reason' }, m.reason) : null);
}

export async function mount(ctx, route) {
  const msg = await ctx.rpc('messages.get', { id: route.arg ?? '' });
  const el = h('section', { class: 'view' });
  const threadId = msg.threadId ?? msg.id;

  async function render() {
    const summaries = await ctx.rpc('messages.thread', { threadId });
    // Bodies come from messages.get; fetch the thread's last 50 in one batch.
    const shown = summaries.slice(-50);
    const [full, names] = await Promise.all([ctx.batch(shown.map((m) => ['messages.get', { id: m.id }])), ctx.contactNames()]);
    const items = shown.map((m, i) => (full[i] instanceof Error ? m : full[i]));
    if (!items.some((m) => m.id === msg.id)) items.push(msg);
    const subject = items[0]?.subject || msg.subject || '(no subject)';
    el.replaceChildren(
      h('div', { class: 'view-head' },
        h('a', { class: 'back', href: '#/inbox' }, '← Inbox'),
        h('h1', { tabindex: -1, testid: 'read-subject' }, subject)),
      h('div', { class: 'thread-view', testid: 'thread-view' }, items.map((m) => article(m, m.id === msg.id, names))),
      h('div', { class: 'actions' },
        h('a', { class: 'button primary', href: replyHref(msg), testid: 'reply' }, 'Reply')));
    ctx.refreshGlobals();
  }
  const again = debounce(() => void render().catch(() => {}), 50);

  await render();
  return {
    el,
    title: msg.subject || 'Message',
    refresh: again,
    onEvent(ev) {
      if (ev.type === 'message.received') again();
      if (ev.type === 'message.state') {
        const badge = el.querySelector(`article[data-id="${CSS.escape(ev.id)}"] [data-testid="message-state"]`);
        if (badge) setStateBadge(badge, ev.state);
        else if (ev.state === 'queued') again();
      }
    },
  };
}
