/**
 * `onionpost mailboxes add|list|remove`: the mailbox providers this user's running node subscribes
 * at (issue 11), and what it measured of them (issue 12 item 4): `scores`, the `spare` providers and
 * accepted `trust` lists it may switch to when one of ours loses mail or stays out of reach, and
 * `review` to do so now. Each is one API call (mailboxes.*). `list` also shows what each provider
 * last said of our account (paid until, held), and in words a priced provider whose payment ends
 * within 7 days or has ended, with the command that pays it (issue 12, item 2). `policy` shows or
 * sets the directory policy: whether the node takes providers from the directory by itself, and
 * which listings qualify (issue 12, item 3; node/mailbox-policy.ts).
 */
import { readFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { ApiError, connectToNode } from '../api/index.js';
import type { MailboxPolicy } from '../node/index.js';
import { parseAmount } from './amount.js';
import { print, type GlobalArgs } from './common.js';
import { table, when } from './format.js';
import { CliError } from './prompt.js';

export interface MailboxView {
  onion: string;
  terms: { retentionMs: number; quotaBytes: number };
  subscribedAt: number;
  lastFetchAt: number | null;
  paidUntil: number | null;
  held: { count: number; bytes: number; quotaBytes: number } | null;
  warning: string | null;
  reputation?: ScoreView;
}

interface TrustListView {
  name: string;
  signer: string;
  expiresAt: number;
  providers: string[];
}

export interface ScoreView {
  onion: string;
  score: number;
  proven: boolean;
  belowThreshold: boolean;
  counts: Record<string, number>;
  ours?: boolean;
  history?: { at: number; kind: string; detail: string | null }[];
}

/** "0.93", "0.50 unproven", "0.16 BELOW THE LINE". */
export function scoreWords(r: ScoreView | undefined): string {
  if (!r) return '-';
  return `${r.score.toFixed(2)}${r.belowThreshold ? ' BELOW THE LINE' : r.proven ? '' : ' unproven'}`;
}

/** What the score is made of: "12 deposits, 1 refused, 3 unreachable, 40 fetches, 9 delivered, 1 lost". */
export function countWords(c: Record<string, number>): string {
  const parts: [string, string][] = [
    ['deposit_ok', 'deposits'], ['deposit_refused', 'refused'], ['unreachable', 'unreachable'], ['fetch_ok', 'fetches'],
    ['delivered', 'delivered'], ['lost', 'lost'], ['malformed', 'malformed'],
  ];
  const out = parts.filter(([k]) => (c[k] ?? 0) > 0).map(([k, w]) => `${c[k]} ${w}`);
  return out.length ? out.join(', ') : 'nothing seen yet';
}

const DAY = 24 * 3600 * 1000;

/** "14 days, 256 MB": a provider's terms in plain words. */
export function termsWords(t: MailboxView['terms']): string {
  const days = t.retentionMs / DAY;
  const mb = t.quotaBytes / (1024 * 1024);
  return `keeps mail ${Number.isInteger(days) ? days : days.toFixed(1)} day${days === 1 ? '' : 's'}, up to ${Number.isInteger(mb) ? mb : mb.toFixed(1)} MB`;
}

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10 * 1024 ? 1 : 0)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0)} MB`;
}

/** "free", "2026-12-03", "?" (not asked yet): how long a provider is paid. */
export function paidWords(m: Pick<MailboxView, 'paidUntil'>): string {
  if (m.paidUntil === null) return '?';
  if (m.paidUntil === 0) return 'free';
  return m.paidUntil <= 1 ? 'not paid' : new Date(m.paidUntil).toISOString().slice(0, 10);
}

/** "3 (12 KB of 256 MB)": what a provider holds for us. */
export function heldWords(m: Pick<MailboxView, 'held'>): string {
  return m.held ? `${m.held.count} (${size(m.held.bytes)} of ${size(m.held.quotaBytes)})` : '?';
}

/** What the node running on `dataDir` measured of `onion`; null when no node runs there. */
export async function measuredBy(dataDir: string, onion: string): Promise<ScoreView | null> {
  let client;
  try {
    client = connectToNode(dataDir);
  } catch (err) {
    if (err instanceof ApiError && err.code === 'NODE_NOT_RUNNING') return null;
    throw err;
  }
  return (await client.call<ScoreView[]>('mailboxes.scores', { onion }))[0] ?? null;
}

/** The directory policy as the API shows it. */
export type PolicyView = MailboxPolicy;

/** The policy in two lines of words (`formatAmount` from registry/, which this module does not load until needed). */
export function policyWords(p: PolicyView, formatAmount: (v: bigint, token: string | null) => string): string {
  const price = p.freeOnly ? 'free ones only'
    : p.maxPrice ? `at most ${formatAmount(BigInt(p.maxPrice.amount), p.maxPrice.token)} per 30 days (priced ones once you paid them)`
    : 'any price (priced ones once you paid them)';
  return [
    p.directory ? `Directory policy: on — your node picks providers from the directory and keeps ${p.target}` : 'Directory policy: off — your node uses only the providers you name (spares, trust lists)',
    `  listings must lock a stake of at least ${formatAmount(BigInt(p.minStakeSun), null)}, keep mail at least ${p.minRetentionDays} days, ${price}`,
  ].join('\n');
}

/** `--max-price 5` (TRX), `5:<token address>` (TRC-20 units; the node checks the address), `none` (no cap). */
function parseMaxPrice(s: string): PolicyView['maxPrice'] {
  if (s.trim() === 'none') return null;
  const [amount, token, ...rest] = s.trim().split(':');
  if (rest.length || token === '') throw new CliError('USAGE', `--max-price is an amount, an amount:token address, or none; got "${s}"`);
  return { amount: parseAmount(amount!, '--max-price').toString(), token: token ?? null };
}

/** Subscribing goes through Tor to the provider: allow for a slow circuit. */
export const ADD_TIMEOUT_MS = 150_000;

export function registerMailboxCommands(cli: Argv<GlobalArgs>): void {
  const node = (a: GlobalArgs) => connectToNode(a.dataDir);
  cli.command('mailboxes', 'the mailbox providers that hold your mail while you are offline (needs a running node)', (y) => y
    .command('add <onion>', 'subscribe at a provider and list it in your bundle', (yy) => yy.positional('onion', { type: 'string', demandOption: true }), async (a) => {
      const m = await node(a as unknown as GlobalArgs).call<MailboxView>('mailboxes.add', { onion: a.onion }, { timeoutMs: ADD_TIMEOUT_MS });
      print(a as unknown as GlobalArgs, m, () => `Subscribed at ${m.onion}: it ${termsWords(m.terms)}`);
    })
    .command('list', 'the providers you subscribed at', (yy) => yy, async (a) => {
      const list = await node(a as unknown as GlobalArgs).call<MailboxView[]>('mailboxes.list');
      print(a as unknown as GlobalArgs, list, () => list.length === 0 ? 'No mailbox providers.' : [
        table(['ONION', 'TERMS', 'SUBSCRIBED', 'LAST FETCH', 'SCORE', 'PAID UNTIL', 'HELD'],
          list.map((m) => [
            m.onion, termsWords(m.terms), when(m.subscribedAt), m.lastFetchAt === null ? 'never' : when(m.lastFetchAt), scoreWords(m.reputation), paidWords(m), heldWords(m),
          ])),
        ...list.flatMap((m) => (m.warning ? [`WARNING: ${m.warning}`] : [])),
      ].join('\n'));
    })
    .command('scores [onion]', 'what your node measured of providers: yours and those it left mail at (with an onion: its recent events)', (yy) => yy
      .positional('onion', { type: 'string' }), async (a) => {
      const list = await node(a as unknown as GlobalArgs).call<ScoreView[]>('mailboxes.scores', a.onion !== undefined ? { onion: a.onion } : {});
      print(a as unknown as GlobalArgs, list, () => {
        if (list.length === 0) return 'No provider measured yet.';
        const t = table(['ONION', 'YOURS', 'SCORE', 'SEEN'], list.map((r) => [r.onion, r.ours ? 'yes' : '', scoreWords(r), countWords(r.counts)]));
        const h = list[0]?.history;
        return h ? `${t}\n\n${h.length ? h.map((e) => `${when(e.at)}  ${e.kind}${e.detail ? `  ${e.detail}` : ''}`).join('\n') : 'No events.'}` : t;
      });
    })
    .command('spares', 'the providers your node may switch to when one of yours loses mail or stays unreachable', (yy) => yy, async (a) => {
      const list = await node(a as unknown as GlobalArgs).call<string[]>('mailboxes.spares');
      print(a as unknown as GlobalArgs, list, () => list.length === 0 ? 'No spare providers.' : list.join('\n'));
    })
    .command('spare <onion>', 'name a provider your node may switch to (it subscribes there only when needed)', (yy) => yy.positional('onion', { type: 'string', demandOption: true }), async (a) => {
      const list = await node(a as unknown as GlobalArgs).call<string[]>('mailboxes.addSpare', { onion: a.onion });
      print(a as unknown as GlobalArgs, list, () => `Spare providers: ${list.join(', ')}`);
    })
    .command('unspare <onion>', 'stop naming a provider as a spare', (yy) => yy.positional('onion', { type: 'string', demandOption: true }), async (a) => {
      const list = await node(a as unknown as GlobalArgs).call<string[]>('mailboxes.removeSpare', { onion: a.onion });
      print(a as unknown as GlobalArgs, list, () => list.length ? `Spare providers: ${list.join(', ')}` : 'No spare providers.');
    })
    .command('trust <file>', 'accept a signed trust list: the providers on it become replacements your node may switch to', (yy) => yy
      .positional('file', { type: 'string', demandOption: true })
      .option('signer', { type: 'string', demandOption: true, describe: 'who must have signed it: a contact\'s alias or an identity key (64 hex)' }), async (a) => {
      let text: string;
      try {
        text = readFileSync(a.file, 'utf8');
      } catch (err) {
        throw new CliError('USAGE', `cannot read ${a.file}: ${(err as Error).message}`);
      }
      const l = await node(a as unknown as GlobalArgs).call<TrustListView>('mailboxes.addTrustList', { text, signer: a.signer });
      print(a as unknown as GlobalArgs, l, () => `Accepted "${l.name}" (${l.providers.length} providers, until ${when(l.expiresAt)})`);
    })
    .command('trust-lists', 'the trust lists you accepted', (yy) => yy, async (a) => {
      const list = await node(a as unknown as GlobalArgs).call<(TrustListView & { valid: boolean; problem: string | null })[]>('mailboxes.trustLists');
      print(a as unknown as GlobalArgs, list, () => list.length === 0 ? 'No trust lists.' :
        table(['NAME', 'SIGNER', 'PROVIDERS', 'UNTIL'], list.map((l) => [l.name, `${l.signer.slice(0, 16)}…`, String(l.providers.length), l.valid ? when(l.expiresAt) : `EXPIRED ${when(l.expiresAt)}`])));
    })
    .command('untrust <name>', 'forget a trust list', (yy) => yy.positional('name', { type: 'string', demandOption: true }), async (a) => {
      const r = await node(a as unknown as GlobalArgs).call<{ removed: boolean }>('mailboxes.removeTrustList', { name: a.name });
      print(a as unknown as GlobalArgs, r, () => `Forgot "${a.name}"`);
    })
    .command('policy', 'show or set whether your node picks providers from the directory by itself, and which listings qualify', (yy) => yy
      .option('directory', { type: 'string', choices: ['on', 'off'], describe: 'pick providers from the directory: replacements after your spares, and filling up to --target' })
      .option('target', { type: 'number', describe: 'how many providers to keep when the directory policy is on (1..8, default 2)' })
      .option('min-stake', { type: 'string', describe: 'least stake a listing must lock, TRX' })
      .option('min-retention-days', { type: 'number', describe: 'least retention a listing must promise, days' })
      .option('max-price', { type: 'string', describe: 'highest price per 30 days: TRX, <amount>:<token> for a TRC-20 token, or none' })
      .option('free-only', { type: 'boolean', describe: 'only free listings (--no-free-only to allow priced ones you paid)' }), async (a) => {
      const patch: Partial<PolicyView> = {
        ...(a.directory !== undefined ? { directory: a.directory === 'on' } : {}),
        ...(a.target !== undefined ? { target: a.target } : {}),
        ...(a.minStake !== undefined ? { minStakeSun: parseAmount(a.minStake, '--min-stake').toString() } : {}),
        ...(a.minRetentionDays !== undefined ? { minRetentionDays: a.minRetentionDays } : {}),
        ...(a.maxPrice !== undefined ? { maxPrice: parseMaxPrice(a.maxPrice) } : {}),
        ...(a.freeOnly !== undefined ? { freeOnly: a.freeOnly } : {}),
      };
      const client = node(a as unknown as GlobalArgs);
      const p = Object.keys(patch).length ? await client.call<PolicyView>('mailboxes.setPolicy', patch) : await client.call<PolicyView>('mailboxes.policy');
      const { formatAmount } = await import('../registry/index.js');
      print(a as unknown as GlobalArgs, p, () => policyWords(p, formatAmount));
    })
    .command('review', 'count delivered and lost mail now, and replace a provider of yours that fell below the line with the best spare', (yy) => yy, async (a) => {
      type Review = {
        settled: { delivered: number; lost: number }; replaced: { dropped: string; added: string; reason: string }[]; kept: { provider: string; reason: string }[];
        redeposited: number; added: string[]; payable: { provider: string; message: string }[];
      };
      const r = await node(a as unknown as GlobalArgs).call<Review>('mailboxes.review', {}, { timeoutMs: ADD_TIMEOUT_MS });
      print(a as unknown as GlobalArgs, r, () => [
        `counted: ${r.settled.delivered} delivered, ${r.settled.lost} lost`,
        ...r.replaced.map((x) => `replaced ${x.dropped} by ${x.added || 'none'}: ${x.reason}`),
        ...r.kept.map((x) => `kept ${x.provider} (no replacement available): ${x.reason}`),
        ...(r.redeposited ? [`left ${r.redeposited} message(s) at other providers`] : []),
        ...r.added.map((x) => `subscribed at ${x} (from the directory, by your policy)`),
        ...r.payable.map((x) => `note: ${x.message}`),
      ].join('\n'));
    })
    .command('remove <onion>', 'stop using a provider (it leaves your bundle)', (yy) => yy.positional('onion', { type: 'string', demandOption: true }), async (a) => {
      const m = await node(a as unknown as GlobalArgs).call<MailboxView>('mailboxes.remove', { onion: a.onion });
      print(a as unknown as GlobalArgs, m, () => `Removed ${m.onion}`);
    })
    .demandCommand(1, 'name a mailboxes subcommand: add, list, remove, scores, spares, spare, unspare, trust, trust-lists, untrust, policy, review'), () => {});
}
