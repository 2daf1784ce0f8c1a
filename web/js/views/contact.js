// A contact's page (#/contact/<alias>): keys, where they came from, the safety number to compare
// with them in person or on a call (both of you see the same 60 digits), a pending key change with
// Approve / Reject, and the ways to reach them.
import { ApiError } from '../api.js';
import { debounce, fingerprint, h, timeEl } from '../dom.js';
import { copyOnion, keyChangeAlert, sourceText } from './contacts.js';

export async function mount(ctx, route) {
  const alias = route.arg ?? '';
  const el = h('section', { class: 'view narrow' });
  async function render() {
    const [c, sn] = await Promise.all([ctx.rpc('contacts.get', { alias }), ctx.rpc('contacts.safetyNumber', { alias })]);
    const remove = h('button', { type: 'button', class: 'danger-outline', testid: 'contact-remove' }, 'Remove contact');
    const status = h('p', { class: 'error', role: 'alert', hidden: true });
    remove.addEventListener('click', async () => {
      try {
        await ctx.rpc('contacts.remove', { alias: c.alias });
        ctx.announce(`Removed ${c.alias}.`);
        ctx.navigate('#/contacts');
      } catch (err) {
        status.hidden = false;
        status.textContent = err instanceof ApiError ? err.message : String(err?.message ?? err);
      }
    });
    // replaceChildren would print a null as "null": leave the absent parts out.
    el.replaceChildren(...[
      h('div', { class: 'view-head' },
        h('a', { class: 'back', href: '#/contacts' }, '← Contacts'),
        h('h1', { tabindex: -1, testid: 'contact-name' }, c.alias)),
      c.keyChange ? keyChangeAlert(ctx, c, render) : null,
      h('div', { class: 'card safety' },
        h('h2', {}, 'Safety number'),
        h('p', { class: 'muted' }, `Compare these digits with ${c.alias}, in person or on a call. If theirs are the same, nobody stands between your nodes. They change when either of you gets a new identity key.`),
        h('p', { class: 'safety-number', testid: 'safety-number', 'data-digits': sn.digits },
          sn.groups.map((g) => h('span', { class: 'group' }, g))),
        c.keyChange ? h('p', { class: 'muted' }, 'This is the number for the key you pinned, not the new one.') : null),
      h('div', { class: 'card' },
        h('dl', { class: 'kv' },
          h('dt', {}, 'Onion'), copyOnion(c),
          h('dt', {}, 'Identity key'), h('dd', {}, h('code', { class: 'fp', testid: 'contact-fingerprint' }, fingerprint(c.identityKey))),
          h('dt', {}, 'Source'), h('dd', {}, sourceText(c)),
          c.pinnedAt ? [h('dt', {}, 'Pinned'), h('dd', {}, timeEl(c.pinnedAt))] : null)),
      h('div', { class: 'actions' },
        h('a', { class: 'button primary', href: `#/chat/${encodeURIComponent(c.onion)}`, testid: 'contact-chat' }, 'Chat'),
        h('a', { class: 'button', href: `#/compose?to=${encodeURIComponent(c.alias)}` }, 'Write mail'),
        remove),
      status].filter(Boolean));
  }
  const again = debounce(() => void render().catch(() => {}), 50);
  await render();
  return {
    el,
    title: alias,
    refresh: again,
    onEvent(ev) {
      if (ev.type === 'contact.keyChange' && ev.alias === alias) again();
    },
  };
}
