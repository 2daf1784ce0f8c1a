/**
 * `onionpost mailboxes add|list|remove`: the mailbox providers this user's running node subscribes
 * at (issue 11). Each is one API call (mailboxes.*). Fetching the mail they hold and deposits to
 * them come in a later release; for now a provider is subscribed, remembered, and listed in the
 * bundle the node hands out.
 */
import type { Argv } from 'yargs';
import { connectToNode } from '../api/index.js';
import { print, type GlobalArgs } from './common.js';
import { table, when } from './format.js';

export interface MailboxView {
  onion: string;
  terms: { retentionMs: number; quotaBytes: number };
  subscribedAt: number;
  lastFetchAt: number | null;
}

const DAY = 24 * 3600 * 1000;

/** "14 days, 256 MB": a provider's terms in plain words. */
export function termsWords(t: MailboxView['terms']): string {
  const days = t.retentionMs / DAY;
  const mb = t.quotaBytes / (1024 * 1024);
  return `keeps mail ${Number.isInteger(days) ? days : days.toFixed(1)} day${days === 1 ? '' : 's'}, up to ${Number.isInteger(mb) ? mb : mb.toFixed(1)} MB`;
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
      print(a as unknown as GlobalArgs, list, () => list.length === 0 ? 'No mailbox providers.' :
        table(['ONION', 'TERMS', 'SUBSCRIBED', 'LAST FETCH'], list.map((m) => [m.onion, termsWords(m.terms), when(m.subscribedAt), m.lastFetchAt === null ? 'never' : when(m.lastFetchAt)])));
    })
    .command('remove <onion>', 'stop using a provider (it leaves your bundle)', (yy) => yy.positional('onion', { type: 'string', demandOption: true }), async (a) => {
      const m = await node(a as unknown as GlobalArgs).call<MailboxView>('mailboxes.remove', { onion: a.onion });
      print(a as unknown as GlobalArgs, m, () => `Removed ${m.onion}`);
    })
    .demandCommand(1, 'name a mailboxes subcommand: add, list, remove'), () => {});
}
