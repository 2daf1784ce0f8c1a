/** Login checks shared by SMTP and IMAP. */
import { timingSafeEqual, createHash } from 'node:crypto';
import { isIP } from 'node:net';

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (::ffff:127.x.y.z). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.toLowerCase().replace(/^::ffff:/, '');
  if (isIP(a) === 4) return a.startsWith('127.');
  return a === '::1';
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * The user name is the user's own address, or its local part (`mail`), in any case; the password
 * is compared in constant time (through digests, so the length does not show either).
 */
export function checkPassword(user: string, password: string, ownAddress: string, expected: string): boolean {
  const u = user.trim().toLowerCase();
  const own = ownAddress.toLowerCase();
  const userOk = u === own || u === own.slice(0, own.indexOf('@'));
  const passOk = timingSafeEqual(digest(password), digest(expected));
  return userOk && passOk;
}
