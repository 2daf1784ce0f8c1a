/** Amounts as users type them: TRX (or a TRC-20 token's units) with at most 6 decimals. */
import { CliError } from './prompt.js';

const TRX = 1_000_000n;

/** "5", "0.5", "12.000001" → sun (or the token's smallest unit, 6 decimals); CliError USAGE otherwise. */
export function parseAmount(s: string, what: string): bigint {
  const m = /^(\d{1,12})(?:\.(\d{1,6}))?$/.exec(s.trim());
  if (!m) throw new CliError('USAGE', `${what} must be a number with at most 6 decimals, got "${s}"`);
  return BigInt(m[1]!) * TRX + BigInt((m[2] ?? '').padEnd(6, '0'));
}
