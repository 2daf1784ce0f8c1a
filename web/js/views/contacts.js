// Contacts (#/contacts): alias, onion, pinned identity-key fingerprint, source; each opens its page
// (#/contact/<alias>) with the safety number. A loud alert when a contact's keys changed without a
// valid rotation statement, with the choice: accept the new key, or reject it and cancel what is held.
import { ApiError } from '../api.js';
import { copyText, debounce, fingerprint, h, timeEl } from '../dom.js';

/** The key-change alert with Approve / Reject; shared with the contact page. */
export function keyChangeAlert(ctx, c, refresh) {
  const k = c.keyChange;
  const approve = h('button', { type: 'button', class: 'danger', testid: 'approve-key' }, 'Approve new key');
  const reject = h('button', { type: 'button', testid: 'reject-key' }, 'Reject, keep the old key');
  const status = h('p', { class: 'error', hidden: true });
  const run = (button, method, said) => button.addEventListener('click', async () => {
    approve.disabled = reject.disabled = true;
    try {
      const r = await ctx.rpc(method, { alias: c.alias });
      ctx.announce(said(r));
      ctx.refreshGlobals();
      await refresh();
    } catch (err) {
      approve.disabled = reject.disabled = false;
      status.hidden = false;
      status.textContent = err instanceof ApiError ? err.message : String(err?.message ?? err);
    }
  });
  run(approve, 'contacts.approveKeyChange', () => `Approved ${c.alias}'s new key. Held messages are being re-sent.`);
  run(reject, 'contacts.rejectKeyChange', (r) => `Rejected ${c.alias}'s new key; ${r.cancelled ?? 0} held message${r.cancelled === 1 ? '' : 's'} cancelled.`);
  return h('div', { class: 'keychange', role: 'alert', testid: 'key-change-alert', 'data-alias': c.alias },
    h('h3', {}, `${c.alias}'s keys changed`),
    h('p', {}, 'A new identity key was seen for this contact without a statement signed by the old key. ',
      'Messages to ', h('strong', {}, c.alias), ' are held. Approve only if you confirmed the change with them some other way. ',
      'Reject to keep the key you had: held messages are cancelled, and new ones go to the old key.'),
    h('dl', { class: 'kv' },
      h('dt', {}, 'Reason'), h('dd', {}, k.reason ?? 'unknown'),
      h('dt', {}, 'Pinned key'), h('dd', {}, h('code', { class: 'fp' }, fingerprint(c.identityKey))),
      h('dt', {}, 'New key'), h('dd', {}, h('code', { class: 'fp', testid: 'new-key' }, fingerprint(k.identityKey))),
      k.onion ? [h('dt', {}, 'New onion'), h('dd', {}, h('code', { class: 'onion' }, k.onion))] : null,
      h('dt', {}, 'Seen'), h('dd', {}, timeEl(k.seenAt))),
    h('div', { class: 'actions' }, approve, reject),
    status);
}

/** "Copy" next to an onion. */
export function copyOnion(c) {
  const onion = h('code', { class: 'onion' }, c.onion);
  const copy = h('button', { type: 'button', class: 'small', 'aria-label': `Copy ${c.alias}'s onion address` }, 'Copy');
  copy.addEventListener('click', async () => {
    copy.textContent = (await copyText(c.onion, onion)) ? 'Copied' : 'Selected';
    setTimeout(() => (copy.textContent = 'Copy'), 1500);
  });
  return h('dd', { class: 'with-button' }, onion, copy);
}

export function sourceText(c) {
  return c.source === 'registry' ? `registry name “${c.registryName}”${c.registryVersion ? `, v${c.registryVersion}` : ''}` : c.source === 'onion' ? 'added by onion address' : c.source;
}

function contactCard(ctx, c, refresh) {
  return h('li', { class: `card contact${c.keyChange ? ' has-alert' : ''}`, testid: 'contact', 'data-alias': c.alias },
    h('h2', {}, h('a', { href: `#/contact/${encodeURIComponent(c.alias)}`, testid: 'contact-link' }, c.alias)),
    c.keyChange ? keyChangeAlert(ctx, c, refresh) : null,
    h('dl', { class: 'kv' },
      h('dt', {}, 'Onion'), copyOnion(c),
      h('dt', {}, 'Identity key'), h('dd', {}, h('code', { class: 'fp', testid: 'contact-fingerprint' }, fingerprint(c.identityKey))),
      h('dt', {}, 'Source'), h('dd', {}, sourceText(c)),
      c.pinnedAt ? [h('dt', {}, 'Pinned'), h('dd', {}, timeEl(c.pinnedAt))] : null),
    h('div', { class: 'actions' },
      h('a', { class: 'button', href: `#/compose?to=${encodeURIComponent(c.alias)}` }, `Write to ${c.alias}`),
      h('a', { class: 'button', href: `#/chat/${encodeURIComponent(c.onion)}` }, 'Chat'),
      h('a', { class: 'button', href: `#/contact/${encodeURIComponent(c.alias)}`, testid: 'verify' }, 'Verify safety number')));
}

export async function mount(ctx) {
  const list = h('ul', { class: 'contacts', testid: 'contact-list' });
  const empty = h('p', { class: 'empty', hidden: true }, 'No contacts yet. Add one below, or just send to an .onion address.');

  const alias = h('input', { id: 'c-alias', name: 'alias', required: true, maxlength: 64, autocomplete: 'off', testid: 'contact-alias' });
  const address = h('input', { id: 'c-address', name: 'address', required: true, maxlength: 200, autocomplete: 'off', spellcheck: 'false', testid: 'contact-address', 'aria-describedby': 'c-address-hint' });
  const addMsg = h('p', { class: 'result', hidden: true, 'aria-live': 'polite' });
  const form = h('form', { class: 'card form inline', 'aria-labelledby': 'add-h' },
    h('h2', { id: 'add-h' }, 'Add a contact'),
    h('div', { class: 'row' },
      h('div', { class: 'field' }, h('label', { for: 'c-alias' }, 'Name'), alias),
      h('div', { class: 'field grow' }, h('label', { for: 'c-address' }, 'Address'), address,
        h('p', { class: 'hint', id: 'c-address-hint' }, 'An .onion address or a registered name. Its keys are pinned now.')),
      h('button', { type: 'submit', class: 'primary', testid: 'contact-add' }, 'Add')),
    addMsg);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const c = await ctx.rpc('contacts.add', { alias: alias.value.trim(), address: address.value.trim() });
      addMsg.className = 'result ok';
      addMsg.textContent = `Added ${c.alias}.`;
      alias.value = address.value = '';
      await refresh();
    } catch (err) {
      addMsg.className = 'result error';
      addMsg.textContent = err instanceof ApiError ? err.message : String(err?.message ?? err);
    }
    addMsg.hidden = false;
  });

  const el = h('section', { class: 'view' },
    h('div', { class: 'view-head' }, h('h1', { tabindex: -1 }, 'Contacts')),
    list, empty, form);

  async function refresh() {
    const cs = await ctx.rpc('contacts.list');
    // Contacts with a pending key change first: they need the user.
    cs.sort((a, b) => (b.keyChange ? 1 : 0) - (a.keyChange ? 1 : 0) || a.alias.localeCompare(b.alias));
    list.replaceChildren(...cs.map((c) => contactCard(ctx, c, refresh)));
    empty.hidden = cs.length > 0;
  }
  const again = debounce(() => void refresh().catch(() => {}), 50);

  await refresh();
  return {
    el,
    title: 'Contacts',
    refresh: again,
    onEvent(ev) {
      if (ev.type === 'contact.keyChange') again();
    },
  };
}
