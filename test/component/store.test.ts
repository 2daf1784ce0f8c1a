import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { silentLogger } from '../../src/log.js';
import { MIGRATIONS, SCHEMA_VERSION, StoreError, migrate, openStore, type NewIncoming } from '../../src/store/index.js';
import { errorCodeOf } from '../fixtures/codes.js';

const root = mkdtempSync(join(tmpdir(), 'onionpost-store-'));
after(() => rmSync(root, { recursive: true, force: true }));
const here = dirname(fileURLToPath(import.meta.url));
const CHILD = join(here, '..', 'fixtures', 'store-crash-child.js');
const SENDER = 'ab'.repeat(32);

const u8 = (n: number) => new Uint8Array(randomBytes(n));

let n = 0;
function dbPath(): string {
  const dir = join(root, `d${++n}`);
  mkdirSync(dir, { mode: 0o700 });
  return join(dir, 'node.db');
}

function incoming(over: Partial<NewIncoming> = {}): NewIncoming {
  const now = Date.now();
  return {
    id: randomBytes(16).toString('hex'), kind: 'mail', peerIdentity: SENDER, subject: 's', body: 'body',
    createdAt: now, expiresAt: now + 86_400_000, receivedAt: now, envelopeHash: u8(32), receipt: u8(64),
    ...over,
  };
}

const codeOf = (fn: () => unknown): string => errorCodeOf(StoreError, fn);

test('pragmas: WAL, synchronous=FULL, foreign keys, busy timeout, bounded WAL; files are 0600', () => {
  const path = dbPath();
  const store = openStore({ path, logger: silentLogger() });
  try {
    const d = store.diagnostics({ quickCheck: true });
    assert.equal(d.journalMode, 'wal');
    assert.equal(d.synchronous, 2);
    assert.equal(d.foreignKeys, true);
    assert.equal(d.busyTimeoutMs, 5000);
    assert.equal(d.walAutocheckpointPages, 1000);
    assert.equal(d.journalSizeLimit, 16 * 1024 * 1024);
    assert.equal(d.quickCheck, 'ok');
    assert.equal(store.schemaVersion, SCHEMA_VERSION);
    store.commitIncoming(incoming());
    for (const f of [path, `${path}-wal`, `${path}-shm`]) assert.equal(statSync(f).mode & 0o777, 0o600, f);
  } finally {
    store.close();
  }
  store.close(); // idempotent
  assert.equal(codeOf(() => store.counts()), 'CLOSED');
});

test('commitIncoming 100× the same id: one row, identical receipts; survives close/reopen; deleting it leaves the dedup row', () => {
  const path = dbPath();
  const m = incoming();
  let store = openStore({ path, logger: silentLogger() });
  const first = store.commitIncoming(m);
  assert.deepEqual(first, { duplicate: false, receipt: m.receipt, conflict: false });
  for (let i = 0; i < 99; i++) {
    // A retry carries the same envelope; we would sign a new receipt each time, but the stored one wins.
    const r = store.commitIncoming({ ...m, receipt: u8(64), receivedAt: m.receivedAt + i });
    assert.equal(r.duplicate, true);
    assert.equal(r.conflict, false);
    assert.deepEqual(r.receipt, m.receipt);
  }
  assert.equal(store.counts().inbox, 1);
  store.close();

  const raw = new Database(path, { readonly: true });
  assert.equal((raw.prepare('SELECT COUNT(*) AS n FROM messages').get() as { n: number }).n, 1);
  // No dedup row while the message is here: its own row answers (it is written at deletion).
  assert.equal((raw.prepare('SELECT COUNT(*) AS n FROM seen').get() as { n: number }).n, 0);
  assert.equal((raw.prepare('SELECT COUNT(*) AS n FROM message_events').get() as { n: number }).n, 1);
  raw.close();

  store = openStore({ path, logger: silentLogger() });
  try {
    const again = store.commitIncoming({ ...m, receipt: u8(64) });
    assert.equal(again.duplicate, true);
    assert.deepEqual(again.receipt, m.receipt);
    // Same id from another sender or with other bytes: still not stored twice, flagged as a conflict.
    const forged = store.commitIncoming({ ...m, peerIdentity: 'cd'.repeat(32), body: 'forged', envelopeHash: randomBytes(32) });
    assert.equal(forged.duplicate, true);
    assert.equal(forged.conflict, true);
    assert.equal(store.getMessage(m.id)!.body, 'body');
    // Deleted, the message leaves its dedup row, which answers for the id with the same receipt
    // until it is pruned (past the message's expiry and the skew).
    assert.equal(store.deleteMessage(m.id), true);
    const afterDelete = store.commitIncoming({ ...m, receipt: u8(64) });
    assert.equal(afterDelete.duplicate, true);
    assert.equal(afterDelete.conflict, false);
    assert.deepEqual(afterDelete.receipt, m.receipt);
    assert.equal(store.counts().inbox, 0);
    assert.equal(store.pruneSeen(m.expiresAt + 2 * 86_400_000), 1);
    assert.equal(store.commitIncoming({ ...m, receipt: u8(64) }).duplicate, false, 'pruned: the id is new again');
  } finally {
    store.close();
  }
});

test('commitIncomingBatch: one transaction, duplicates inside and across batches detected', () => {
  const store = openStore({ path: dbPath(), logger: silentLogger() });
  try {
    const ms = Array.from({ length: 500 }, () => incoming());
    const dup = { ...ms[0]!, receipt: u8(64) };
    const results = store.commitIncomingBatch([...ms, dup]);
    assert.equal(results.length, 501);
    assert.equal(results.filter((r) => r.duplicate).length, 1);
    assert.deepEqual(results[500]!.receipt, ms[0]!.receipt);
    const again = store.commitIncomingBatch(ms.slice(0, 10));
    assert.ok(again.every((r, i) => r.duplicate && Buffer.compare(r.receipt, ms[i]!.receipt) === 0));
    assert.equal(store.counts().inbox, 500);
    // A bad row rolls back the whole batch.
    const before = store.counts().inbox;
    assert.equal(codeOf(() => store.commitIncomingBatch([incoming(), incoming({ id: 'not-hex' })])), 'CONSTRAINT');
    assert.equal(store.counts().inbox, before);
  } finally {
    store.close();
  }
});

test('migrations: a v1 file is migrated with its rows intact (content split out, history kept); a failing migration rolls back; a newer file is refused', () => {
  const path = dbPath();
  const id = randomBytes(16).toString('hex');
  const v1 = new Database(path);
  v1.pragma('journal_mode = WAL');
  assert.deepEqual(migrate(v1, silentLogger(), MIGRATIONS.slice(0, 1)), { from: 0, to: 1 });
  v1.prepare(`INSERT INTO messages (id, direction, kind, peer_identity, body, thread_id, created_at, expires_at, sort_at, state, envelope, envelope_hash, next_attempt_at)
              VALUES (?, 'out', 'mail', ?, 'old', ?, 1, 2000000000000, 1, 'queued', x'01', x'02', 1)`).run(id, SENDER, id);
  v1.prepare(`INSERT INTO message_events (message_id, at, state) VALUES (?, 1, 'queued')`).run(id);
  assert.equal(v1.pragma('user_version', { simple: true }), 1);
  assert.throws(() => v1.prepare('SELECT * FROM attempts').all(), /no such table/);
  v1.close();

  const store = openStore({ path, logger: silentLogger() });
  assert.equal(store.schemaVersion, SCHEMA_VERSION);
  const row = store.getMessage(id)!;
  assert.equal(row.body, 'old');
  assert.deepEqual(row.envelope, Uint8Array.of(1));
  assert.deepEqual(row.envelopeHash, Uint8Array.of(2));
  assert.equal(row.state, 'queued');
  assert.equal(row.lastErrorCode, null);
  assert.equal(store.counts().queued, 1, 'the counts kept by triggers start from the rows already there');
  // v3 rebuilt the messages table: the history that references it must not have been cascaded away.
  assert.deepEqual(store.listEvents(id).map((e) => e.state), ['queued']);
  assert.deepEqual(store.dueOutgoing(10, 5).map((m) => m.id), [id]);
  const attempt = store.recordAttemptStart(id, 5);
  store.recordAttemptFinish(attempt, 6, 'retry', 'UNREACHABLE');
  assert.equal(store.listAttempts(id)[0]!.errorCode, 'UNREACHABLE');
  store.close();

  const db = new Database(path);
  db.pragma('foreign_keys = ON');
  const broken = [...MIGRATIONS, { version: SCHEMA_VERSION + 1, description: 'broken', up: 'CREATE TABLE t3 (a); INSERT INTO nope VALUES (1);' }];
  assert.throws(() => migrate(db, silentLogger(), broken), (e: unknown) => e instanceof StoreError && e.code === 'MIGRATION_FAILED');
  assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  assert.equal(db.pragma('foreign_keys', { simple: true }), 1, 'foreign keys are back on after a failed migration');
  const dangling = [...MIGRATIONS, { version: SCHEMA_VERSION + 1, description: 'dangling', up: `INSERT INTO message_events (message_id, at, state) VALUES ('${'e'.repeat(32)}', 1, 'queued');` }];
  assert.throws(() => migrate(db, silentLogger(), dangling), (e: unknown) => e instanceof StoreError && e.code === 'MIGRATION_FAILED', 'a migration that breaks a foreign key is rolled back');
  assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  assert.equal((db.prepare(`SELECT COUNT(*) AS n FROM sqlite_schema WHERE name = 't3'`).get() as { n: number }).n, 0);
  db.pragma('user_version = 99');
  db.close();
  assert.equal(codeOf(() => openStore({ path, logger: silentLogger() })), 'MIGRATION_FAILED');
});

test('a file that is not a database is CORRUPT', () => {
  const path = dbPath();
  writeFileSync(path, randomBytes(8192), { mode: 0o600 });
  assert.equal(codeOf(() => openStore({ path, logger: silentLogger() })), 'CORRUPT');
});

/** Runs the child, SIGKILLs it after `killAfter` committed ids, returns every id it printed. */
async function commitAndKill(path: string, killAfter: number, batch: number): Promise<{ ids: string[]; signal: string | null }> {
  const child = spawn(process.execPath, [CHILD, path, '1000000', String(batch)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  let stderr = '';
  const ids: string[] = [];
  let killed = false;
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const closed = new Promise<void>((resolve) => child.stdout.on('close', () => resolve()));
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const l of lines) if (/^[0-9a-f]{32}$/.test(l)) ids.push(l);
    if (!killed && ids.length >= killAfter) {
      killed = true;
      child.kill('SIGKILL');
    }
  });
  const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const { code, signal } = await exited;
  await closed;
  clearTimeout(guard);
  assert.ok(killed, `child ended before the kill point (code ${code}, ${stderr})`);
  return { ids, signal };
}

test('crash safety: every id the child printed after commit is in the database after SIGKILL', async () => {
  for (const [round, batch] of [[1, 1], [2, 1], [3, 25]] as const) {
    const path = dbPath();
    const killAfter = 20 + Math.floor(Math.random() * 300);
    const { ids, signal } = await commitAndKill(path, killAfter, batch);
    assert.equal(signal, 'SIGKILL');
    assert.ok(ids.length >= killAfter);
    const store = openStore({ path, logger: silentLogger() });
    try {
      assert.equal(store.diagnostics({ quickCheck: true }).quickCheck, 'ok');
      const missing = ids.filter((id) => store.getMessage(id) === null);
      assert.deepEqual(missing, [], `round ${round}: ${missing.length} of ${ids.length} acknowledged ids lost (killed after ${killAfter})`);
      // Rows committed after the last printed line may exist too; nothing else.
      assert.ok(store.counts().inbox >= ids.length && store.counts().inbox <= ids.length + batch);
    } finally {
      store.close();
    }
  }
});

/** Fills the store with incoming mail until a write fails; returns the ids committed and the error. */
function fillUntilFull(path: string, opts: { maxSizeBytes?: number }): { ids: string[]; err: unknown } {
  const store = openStore({ path, logger: silentLogger(), ...opts });
  const ids: string[] = [];
  let err: unknown;
  try {
    for (let i = 0; i < 10_000; i++) {
      const m = incoming({ body: randomBytes(6000).toString('base64') });
      try {
        store.commitIncoming(m);
      } catch (e) {
        err = e;
        break;
      }
      ids.push(m.id);
    }
    assert.ok(err, 'the store never filled');
    assert.ok(ids.length > 0);
    // Still usable: reads work, every committed row is whole, a duplicate still gets its receipt.
    for (const id of ids) assert.ok(store.getMessage(id));
    assert.equal(store.counts().inbox, ids.length);
  } finally {
    store.close();
  }
  const again = openStore({ path, logger: silentLogger(), ...opts });
  try {
    assert.equal(again.counts().inbox, ids.length);
    assert.equal(again.diagnostics({ quickCheck: true }).quickCheck, 'ok');
  } finally {
    again.close();
  }
  return { ids, err };
}

test('disk full (database size cap): typed DISK_FULL, earlier rows intact', () => {
  const { err } = fillUntilFull(dbPath(), { maxSizeBytes: 512 * 1024 });
  assert.ok(err instanceof StoreError && err.code === 'DISK_FULL', `got ${String(err)}`);
});

test('disk full (size-limited tmpfs): typed DISK_FULL, earlier rows intact', (t) => {
  const mnt = join(root, 'tmpfs');
  mkdirSync(mnt, { mode: 0o700 });
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', mnt], { encoding: 'utf8' });
  if (mount.status !== 0) {
    t.skip(`cannot mount tmpfs here: ${mount.stderr.trim()}`);
    return;
  }
  try {
    const { err } = fillUntilFull(join(mnt, 'node.db'), {});
    assert.ok(err instanceof StoreError && err.code === 'DISK_FULL', `got ${String(err)}`);
  } finally {
    const um = spawnSync('umount', [mnt], { encoding: 'utf8' });
    assert.equal(um.status, 0, `umount failed: ${um.stderr}`);
  }
});
