/**
 * The bridge's address scheme: how an onionpost recipient is written as an e-mail address that
 * mail clients accept (RFC 5321 mailbox syntax, no quoting needed, labels ≤ 63 characters).
 *
 *   <name>@onionpost.onion     a registry name or a contact alias: exactly what `onionpost send
 *                              <name>` takes (contact first, then the registry). Also accepted
 *                              without the `.onion`: <name>@onionpost
 *   <any>@<56 chars>.onion     a raw v3 onion address; the local part is free (we write `mail`)
 *
 * Both domains end in `.onion` (RFC 7686 special-use: resolvers answer NXDOMAIN and never send the
 * name to DNS) or are dotless (`onionpost`), which no public mail server routes; a client that
 * hands such an address to an ordinary mail server by mistake gets an immediate bounce, not a leak.
 * Pure functions; the node validates the onion's checksum and resolves the name.
 */

export const NAME_DOMAIN = 'onionpost.onion';
const NAME_DOMAINS = new Set([NAME_DOMAIN, 'onionpost']);
const ONION_LABEL = /^[a-z2-7]{56}$/;
/** Local parts we accept for names: registry names, aliases and TRON addresses, nothing that needs quoting. */
const LOCAL = /^[A-Za-z0-9._+-]{1,64}$/;

/** What an address names, before resolution. */
export type ParsedAddress =
  | { kind: 'onion'; onion: string; address: string }
  | { kind: 'name'; name: string; address: string };

/**
 * Parses `local@domain` (angle brackets and a display name around it are the caller's to strip).
 * Returns null for anything that is not in the scheme; case-insensitive in the domain, and in the
 * local part only for onions (names are looked up case-insensitively by the node anyway).
 */
export function parseAddress(input: string): ParsedAddress | null {
  const s = input.trim().replace(/^<(.*)>$/, '$1');
  const at = s.lastIndexOf('@');
  if (at <= 0 || at === s.length - 1) return null;
  const local = s.slice(0, at);
  const domain = s.slice(at + 1).toLowerCase().replace(/\.$/, '');
  if (!LOCAL.test(local)) return null;
  if (NAME_DOMAINS.has(domain)) return { kind: 'name', name: local, address: `${local}@${NAME_DOMAIN}` };
  const m = /^([a-z2-7]+)\.onion$/.exec(domain);
  if (m && ONION_LABEL.test(m[1]!)) return { kind: 'onion', onion: `${m[1]}.onion`, address: onionMailAddress(`${m[1]}.onion`) };
  return null;
}

/** `mail@<onion>` for an onion address given with or without its `.onion`. */
export function onionMailAddress(onion: string): string {
  const host = onion.toLowerCase().endsWith('.onion') ? onion.toLowerCase() : `${onion.toLowerCase()}.onion`;
  return `mail@${host}`;
}

/** `<name>@onionpost.onion`, or null when `name` cannot be a local part. */
export function nameMailAddress(name: string): string | null {
  return LOCAL.test(name) ? `${name}@${NAME_DOMAIN}` : null;
}

/**
 * The address a peer is shown under: its registry name when it has one (what a reply resolves),
 * else its onion. `display` is a contact alias or label for the display-name part.
 */
export function peerMailbox(peer: { onion: string | null; registryName?: string | null; display?: string | null }): { name: string; address: string } {
  const byName = peer.registryName ? nameMailAddress(peer.registryName) : null;
  const address = byName ?? (peer.onion ? onionMailAddress(peer.onion) : `unknown@${NAME_DOMAIN}`);
  return { name: peer.display ?? peer.registryName ?? '', address };
}
