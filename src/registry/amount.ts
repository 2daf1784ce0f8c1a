/**
 * Amounts on TRON in words: TRX has 6 decimals (1 TRX = 1,000,000 sun), and the directory's
 * TRC-20 prices are read with the same 6 decimals (the dev chain's test token has 6). Shared by the
 * CLI and the node's API, so both say a price the same way.
 */
import type { TronAddress } from './address.js';

const TRX = 1_000_000n;

/** `v` smallest units as "5 TRX", "1.5 tokens of T…". */
export function formatAmount(v: bigint, token: TronAddress | string | null): string {
  const whole = v / TRX;
  const frac = (v % TRX).toString().padStart(6, '0').replace(/0+$/, '');
  return `${whole}${frac ? `.${frac}` : ''} ${token ? `tokens of ${token}` : 'TRX'}`;
}

/** A listing's price in words: "free" or "5 TRX per 30 days". */
export function priceWords(price: bigint, token: TronAddress | string | null): string {
  return price === 0n ? 'free' : `${formatAmount(price, token)} per 30 days`;
}
