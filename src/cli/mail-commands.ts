/**
 * Everyday commands on a running node: search, archive, mark unread, delete, retry now, cancel,
 * save a message's files. Each is one API call (see api/methods.ts).
 * Message ids may be given as a unique prefix, as `inbox` and `outbox` print them.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { connectToNode } from '../api/index.js';
import { print, type GlobalArgs } from './common.js';
import { short, shortOnion, table, when } from './format.js';

interface Summary {
  id: string;
  direction: 'in' | 'out';
  kind: string;
  from?: string;
  to?: string;
  fromName?: string | null;
  toName?: string | null;
  subject?: string;
  receivedAt?: number;
  createdAt?: number;
  state: string;
}

/** The name a summary shows for its peer: contact alias or verified registry name, else the short onion. */
export function peerLabel(m: Pick<Summary, 'direction' | 'from' | 'to' | 'fromName' | 'toName'>): string {
  return (m.direction === 'out' ? m.toName : m.fromName) ?? shortOnion(m.direction === 'out' ? m.to : m.from);
}

/** A file name from a sender, made safe to write in `dir`: no path, no leading dot, no control characters, no overwrite. */
export function safeFileName(dir: string, name: string, index: number): string {
  let base = basename(name.replaceAll('\\', '/')).replace(/[\x00-\x1f\x7f]/g, '_').replace(/^\.+/, '').trim().slice(0, 200);
  if (!base) base = `attachment-${index + 1}`;
  let candidate = join(dir, base);
  const dot = base.lastIndexOf('.');
  const [stem, ext] = dot > 0 ? [base.slice(0, dot), base.slice(dot)] : [base, ''];
  for (let n = 1; existsSync(candidate); n++) candidate = join(dir, `${stem} (${n})${ext}`);
  return candidate;
}

export function registerMailCommands(cli: Argv<GlobalArgs>): void {
  const node = (a: GlobalArgs) => connectToNode(a.dataDir);

  cli.command('search <words..>', 'find messages by words in sender, subject or body (needs a running node)', (y) => y
    .positional('words', { type: 'string', array: true, demandOption: true })
    .option('limit', { type: 'number', default: 50 }), async (a) => {
    const query = (a.words as string[]).join(' ');
    const list = await node(a).call<Summary[]>('messages.search', { query, limit: a.limit });
    print(a, list, () => list.length === 0 ? `Nothing found for "${query}".` :
      table(['ID', 'WHO', 'DATE', 'SUBJECT'], list.map((m) => [m.id.slice(0, 12), `${m.direction === 'out' ? 'to ' : ''}${peerLabel(m)}`, when(m.receivedAt ?? m.createdAt), short(m.kind === 'chat' ? `[chat] ${m.subject ?? ''}` : m.subject, 50)])));
  });

  cli.command('archive <id>', 'move a message out of the inbox (--undo: back)', (y) => y
    .positional('id', { type: 'string', demandOption: true })
    .option('undo', { type: 'boolean', default: false }), async (a) => {
    const r = await node(a).call<{ id: string; archived: boolean }>('messages.archive', { id: a.id, archived: !a.undo });
    print(a, r, () => `${r.archived ? 'Archived' : 'Back in the inbox'}: ${r.id}`);
  });

  cli.command('unread <id>', 'mark a received message unread', (y) => y.positional('id', { type: 'string', demandOption: true }), async (a) => {
    const r = await node(a).call<{ id: string; read: boolean }>('messages.markRead', { id: a.id, read: false });
    print(a, r, () => `Marked unread: ${r.id}`);
  });

  cli.command('delete <id>', 'delete a message for good (a queued one: cancel it first)', (y) => y.positional('id', { type: 'string', demandOption: true }), async (a) => {
    const r = await node(a).call<{ id: string; deleted: boolean }>('messages.delete', { id: a.id });
    print(a, r, () => (r.deleted ? `Deleted ${r.id}` : `No message ${a.id}`));
  });

  cli.command('retry <id>', 'try to deliver a waiting message now', (y) => y.positional('id', { type: 'string', demandOption: true }), async (a) => {
    const r = await node(a).call<{ id: string; state: string }>('messages.retryNow', { id: a.id });
    print(a, r, () => `Trying again now: ${r.id}`);
  });

  cli.command('cancel <id>', 'stop trying to deliver a waiting or held message', (y) => y.positional('id', { type: 'string', demandOption: true }), async (a) => {
    const r = await node(a).call<{ id: string; state: string }>('messages.cancel', { id: a.id });
    print(a, r, () => `Cancelled ${r.id}`);
  });

  cli.command('save <id>', "write a message's attached files into a directory", (y) => y
    .positional('id', { type: 'string', demandOption: true })
    .option('dir', { type: 'string', default: '.', describe: 'where to write them' }), async (a) => {
    const api = node(a);
    const m = await api.call<{ id: string; attachments?: { index: number; name: string }[] }>('messages.get', { id: a.id });
    const dir = resolve(a.dir);
    mkdirSync(dir, { recursive: true });
    const written: { name: string; path: string; size: number }[] = [];
    for (const f of m.attachments ?? []) {
      const file = await api.call<{ name: string; data: string }>('messages.attachment', { id: m.id, index: f.index });
      const data = Buffer.from(file.data, 'base64');
      const path = safeFileName(dir, file.name, f.index);
      writeFileSync(path, data, { flag: 'wx', mode: 0o600 });
      written.push({ name: file.name, path, size: data.length });
    }
    print(a, written, () => written.length === 0 ? 'That message has no files.' : written.map((w) => `${w.path}  (${w.size} bytes)`).join('\n'));
  });

}
