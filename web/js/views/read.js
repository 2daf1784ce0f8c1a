// Read (#/read/<id>): one message in its thread (oldest first), with who wrote it (a stranger as
// a short onion + fingerprint, with "Add to contacts"), its files to download, and actions: reply
// (to the sender's name, not the onion), archive, mark unread, delete. Opening it marks the
// thread's received messages read.
import { ApiError } from '../api.js';
import { base64ToBlob, bytesLabel, confirmStep, debounce, deliveryText, h, peer, peerEl, replySubject, stateBadge, timeEl } from '../dom.js';

/** The compose link that replies to `m` in its thread, addressed by name when the node knows one. */
function replyHref(m) {
  const p = peer(m);
  const q = new URLSearchParams({
    to: p.known ? p.name : p.onion,
    subject: replySubject(m.subject),
    thread: m.threadId ?? m.id,
    inReplyTo: m.id,
    kind: m.kind,
  });
  return `#/compose?${q}`;
}

/** Downloads attachment `a` of message `m` (fetched on demand: lists never carry file data). */
async function download(ctx, m, a, button) {
  button.disabled = true;
  try {
    const f = await ctx.rpc('messages.attachment', { id: m.id, index: a.index });
    const url = URL.createObjectURL(base64ToBlob(f.data, 'application/octet-stream'));
    const link = h('a', { href: url, download: f.name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (err) {
    ctx.announce(`Could not download ${a.name}: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

function attachmentList(ctx, m) {
  if (!m.attachments?.length) return null;
  return h('ul', { class: 'files', testid: 'attachments', 'aria-label': 'Attached files' },
    m.attachments.map((a) => {
      const b = h('button', { type: 'button', class: 'small', testid: 'attachment-download', 'data-name': a.name }, 'Download');
      b.addEventListener('click', () => void download(ctx, m, a, b));
      return h('li', { class: 'file', testid: 'attachment' },
        h('span', { class: 'file-name', testid: 'attachment-name' }, a.name),
        h('span', { class: 'muted' }, ` ${bytesLabel(a.size)} · ${a.mediaType}`), ' ', b);
    }));
}

/** For a stranger: "Add to contacts" opens a one-field form (the alias); the onion is theirs already. */
function addContactBox(ctx, m, onAdded) {
  const alias = h('input', { name: 'alias', required: true, maxlength: 64, autocomplete: 'off', testid: 'add-sender-alias', 'aria-label': 'Name for this contact' });
  const msg = h('span', { class: 'error', role: 'alert' });
  const form = h('form', { class: 'add-sender', hidden: true, testid: 'add-sender-form' },
    alias, h('button', { type: 'submit', class: 'small primary' }, 'Save'), msg);
  const open = h('button', { type: 'button', class: 'small', testid: 'add-sender' }, 'Add to contacts');
  open.addEventListener('click', () => {
    form.hidden = false;
    open.hidden = true;
    alias.focus();
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await ctx.rpc('contacts.add', { alias: alias.value.trim(), address: m.from });
      ctx.announce(`Added ${alias.value.trim()} to your contacts.`);
      onAdded();
    } catch (err) {
      msg.textContent = err instanceof ApiError ? err.message : String(err?.message ?? err);
    }
  });
  return h('span', { class: 'add-sender-box' }, open, form);
}

function article(ctx, m, current, rerender) {
  const out = m.direction === 'out';
  const p = peer(m);
  return h('article', { class: `msg ${out ? 'out' : 'in'}${current ? ' current' : ''}`, testid: 'message', 'data-id': m.id, 'aria-current': current ? 'true' : null },
    h('header', {},
      h('span', { class: 'who' }, out ? 'You → ' : '', h('strong', {}, peerEl(m, 'message-from'))),
      !out && !p.known ? addContactBox(ctx, m, rerender) : null,
      m.kind === 'chat' ? h('span', { class: 'tag' }, 'chat') : null,
      out ? stateBadge(m.state, 'message-state') : null,
      timeEl(m.receivedAt ?? m.createdAt)),
    m.subject ? h('h2', { class: 'msg-subject' }, m.subject) : null,
    h('div', { class: 'body', testid: 'message-body' }, m.body ?? ''),
    attachmentList(ctx, m),
    out && m.state !== 'delivered' && (m.delivery || m.reason) ? h('p', { class: 'reason', testid: 'message-reason' }, deliveryText(m)) : null);
}

/** Archive, mark unread, delete (with a confirmation step), for the message on screen. */
function actions(ctx, msg) {
  const status = h('p', { class: 'error', role: 'alert', hidden: true });
  const fail = (err) => {
    status.hidden = false;
    status.textContent = err instanceof ApiError ? err.message : String(err?.message ?? err);
  };
  const archive = h('button', { type: 'button', testid: 'archive' }, msg.archived ? 'Move to inbox' : 'Archive');
  archive.addEventListener('click', async () => {
    try {
      await ctx.rpc('messages.archive', { id: msg.id, archived: !msg.archived });
      ctx.announce(msg.archived ? 'Moved back to the inbox.' : 'Archived.');
      ctx.navigate(msg.archived ? '#/archive' : '#/inbox');
    } catch (err) {
      fail(err);
    }
  });
  const unread = msg.direction === 'in' ? h('button', { type: 'button', testid: 'mark-unread' }, 'Mark unread') : null;
  unread?.addEventListener('click', async () => {
    try {
      await ctx.rpc('messages.markRead', { id: msg.id, read: false });
      ctx.refreshGlobals();
      ctx.announce('Marked unread.');
      ctx.navigate('#/inbox');
    } catch (err) {
      fail(err);
    }
  });
  const del = h('button', { type: 'button', class: 'danger-outline', testid: 'delete' }, 'Delete');
  const confirmDel = h('button', { type: 'button', class: 'danger', testid: 'delete-confirm', hidden: true }, 'Delete for good');
  const keep = h('button', { type: 'button', testid: 'delete-cancel', hidden: true }, 'Keep it');
  const question = h('span', { class: 'confirm-text', hidden: true }, 'Delete this message from this node? It cannot be undone.');
  confirmStep(del, question, confirmDel, keep);
  confirmDel.addEventListener('click', async () => {
    try {
      await ctx.rpc('messages.delete', { id: msg.id });
      ctx.refreshGlobals();
      ctx.announce('Message deleted.');
      ctx.navigate(msg.direction === 'out' ? '#/outbox' : '#/inbox');
    } catch (err) {
      fail(err);
    }
  });
  return h('div', { class: 'actions' },
    h('a', { class: 'button primary', href: replyHref(msg), testid: 'reply' }, msg.direction === 'out' ? 'Write again' : 'Reply'),
    archive, unread, del, question, confirmDel, keep, status);
}

export async function mount(ctx, route) {
  const msg = await ctx.rpc('messages.get', { id: route.arg ?? '' });
  const el = h('section', { class: 'view' });
  const threadId = msg.threadId ?? msg.id;

  async function render() {
    const summaries = await ctx.rpc('messages.thread', { threadId });
    // Bodies come from messages.get; fetch the thread's last 50 in one batch.
    const shown = summaries.slice(-50);
    const full = await ctx.batch(shown.map((m) => ['messages.get', { id: m.id }]));
    const items = shown.map((m, i) => (full[i] instanceof Error ? m : full[i]));
    const current = items.find((m) => m.id === msg.id) ?? msg;
    if (!items.some((m) => m.id === msg.id)) items.push(msg);
    const subject = items[0]?.subject || msg.subject || '(no subject)';
    const back = current.direction === 'out' ? ['#/outbox', '← Outbox'] : current.archived ? ['#/archive', '← Archive'] : ['#/inbox', '← Inbox'];
    el.replaceChildren(
      h('div', { class: 'view-head' },
        h('a', { class: 'back', href: back[0] }, back[1]),
        h('h1', { tabindex: -1, testid: 'read-subject' }, subject)),
      h('div', { class: 'thread-view', testid: 'thread-view' }, items.map((m) => article(ctx, m, m.id === msg.id, again))),
      actions(ctx, current));
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
      // A shown message's state comes with its reason and actions: redraw them together (the
      // badge alone would sit next to the old state's reason). A new queued one joins the thread.
      if (ev.type === 'message.state' && (ev.state === 'queued' || el.querySelector(`article[data-id="${CSS.escape(ev.id)}"]`))) again();
    },
  };
}
