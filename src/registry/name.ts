/**
 * Registry names. The same rule as the contract's: after trimming and lower-casing, 1–64 characters
 * of [a-z0-9-], not starting or ending with '-'. Checked before any network call.
 */
import { RegistryError } from './errors.js';

export const MAX_NAME_LENGTH = 64;
const NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;

/** The canonical form of a name (trimmed, lower case), or throws RegistryError NAME_INVALID. */
export function normalizeName(input: string): string {
  const name = canonical(input);
  if (name === null) {
    throw new RegistryError('NAME_INVALID', `"${input.slice(0, 80)}" is not a valid name: use 1–${MAX_NAME_LENGTH} of a-z, 0-9 and '-', not starting or ending with '-'`);
  }
  return name;
}

/** True when `input` normalizes to a valid name. */
export function isValidName(input: string): boolean {
  return canonical(input) !== null;
}

function canonical(input: string): string | null {
  const trimmed = input.trim();
  // Lower-case only ASCII, so that e.g. the Kelvin sign (U+212A) cannot become a 'k'.
  if (!/^[A-Za-z0-9-]*$/.test(trimmed)) return null;
  const name = trimmed.toLowerCase();
  return NAME_RE.test(name) ? name : null;
}
