/**
 * Contract events in TronGrid's `/v1` shape, decoded with the ABI a contract was deployed with.
 * This is TronGrid's API, not java-tron's: the app must not build correctness on it (a self-hosted
 * node does not serve it). Value conventions (not verified against TronGrid offline): addresses as
 * `0x` + 20-byte hex, integers as decimal strings, bytes as hex without 0x, strings and bools as is.
 */
import type { LogRecord } from './evm.js';
import { abiDecode, signatureHash, toBase58 } from './tron.js';

/** One event as `GET /v1/contracts/<addr>/events` returns it. */
export interface TronEvent {
  block_number: number;
  block_timestamp: number;
  caller_contract_address: string;
  contract_address: string;
  event_index: number;
  event_name: string;
  result: Record<string, unknown>;
  result_type: Record<string, string>;
  event: string;
  transaction_id: string;
  _unconfirmed: boolean;
}

interface AbiParam { name?: string; type: string; indexed?: boolean }
interface AbiEntry { type?: string; name?: string; inputs?: AbiParam[]; anonymous?: boolean }

function lowerType(t: string | undefined): string {
  return (t ?? '').toLowerCase();
}

function convert(type: string, v: unknown): unknown {
  if (type === 'address') return '0x' + String(v).slice(2).toLowerCase();
  if (typeof v === 'bigint') return v.toString();
  if (type.startsWith('bytes')) return String(v).replace(/^0x/, '');
  if (Array.isArray(v)) return v.map((x) => convert(type.replace(/\[\d*\]$/, ''), x));
  return v;
}

/** Decodes one log with `abi`; undefined when no event of the ABI matches topic0. */
export function decodeLog(
  abi: readonly unknown[],
  log: LogRecord,
  where: { txID: string; blockNumber: number; blockTimestamp: number; index: number },
): TronEvent | undefined {
  const t0 = log.topics[0];
  for (const raw of abi) {
    const e = raw as AbiEntry;
    if (lowerType(e.type) !== 'event' || !e.name || e.anonymous) continue;
    const inputs = e.inputs ?? [];
    const sig = `${e.name}(${inputs.map((p) => p.type).join(',')})`;
    if (signatureHash(sig) !== t0) continue;
    const result: Record<string, unknown> = {};
    const resultType: Record<string, string> = {};
    const plain = inputs.filter((p) => !p.indexed);
    const plainValues = plain.length ? abiDecode(plain.map((p) => p.type), log.data) : [];
    let topic = 1;
    let plainAt = 0;
    inputs.forEach((p, i) => {
      let v: unknown;
      if (p.indexed) {
        const word = log.topics[topic++] ?? '';
        const dynamic = p.type === 'string' || p.type === 'bytes' || p.type.endsWith(']') || p.type.startsWith('tuple');
        v = dynamic ? word : convert(p.type, abiDecode([p.type], word)[0]);
      } else {
        v = convert(p.type, plainValues[plainAt++]);
      }
      result[String(i)] = v;
      if (p.name) {
        result[p.name] = v;
        resultType[p.name] = p.type;
      }
    });
    const address = toBase58('41' + log.address);
    return {
      block_number: where.blockNumber,
      block_timestamp: where.blockTimestamp,
      caller_contract_address: address,
      contract_address: address,
      event_index: where.index,
      event_name: e.name,
      result,
      result_type: resultType,
      event: `${e.name}(${inputs.map((p) => `${p.type}${p.indexed ? ' indexed' : ''} ${p.name ?? ''}`.trim()).join(', ')})`,
      transaction_id: where.txID,
      _unconfirmed: false,
    };
  }
  return undefined;
}

/** Query of `GET /v1/contracts/<addr>/events`. */
export interface EventQuery {
  contractAddress?: string; // base58
  transactionId?: string;
  blockNumber?: number;
  eventName?: string;
  minBlockTimestamp?: number;
  maxBlockTimestamp?: number;
  orderBy?: string; // "block_timestamp,desc" (default) | "block_timestamp,asc"
  limit?: number; // default 20, at most 200
  fingerprint?: string; // opaque cursor from a previous page's meta
}

export interface EventPage {
  success: true;
  data: TronEvent[];
  meta: { at: number; page_size: number; fingerprint?: string; links?: { next: string } };
}

/** Filters, orders and pages `events` (oldest first as stored). The fingerprint is an offset. */
export function queryEvents(events: readonly TronEvent[], q: EventQuery, now: number, nextUrl?: (fp: string) => string): EventPage {
  let list = events.filter(
    (e) =>
      (q.contractAddress === undefined || e.contract_address === q.contractAddress) &&
      (q.transactionId === undefined || e.transaction_id === q.transactionId) &&
      (q.blockNumber === undefined || e.block_number === q.blockNumber) &&
      (q.eventName === undefined || e.event_name === q.eventName) &&
      (q.minBlockTimestamp === undefined || e.block_timestamp >= q.minBlockTimestamp) &&
      (q.maxBlockTimestamp === undefined || e.block_timestamp <= q.maxBlockTimestamp),
  );
  if ((q.orderBy ?? 'block_timestamp,desc').endsWith(',desc')) list = list.slice().reverse();
  const limit = Math.min(Math.max(1, q.limit ?? 20), 200);
  const offset = q.fingerprint && /^\d+$/.test(q.fingerprint) ? Number(q.fingerprint) : 0;
  const data = list.slice(offset, offset + limit);
  const meta: EventPage['meta'] = { at: now, page_size: data.length };
  if (offset + limit < list.length) {
    meta.fingerprint = String(offset + limit);
    if (nextUrl) meta.links = { next: nextUrl(meta.fingerprint) };
  }
  return { success: true, data, meta };
}
