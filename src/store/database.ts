/**
 * Opens one durable SQLite file the way every onionpost database is opened: created 0600 before
 * SQLite sees it, WAL with synchronous=FULL (a write that returned survives kill -9 and power
 * loss), bounded WAL, secure_delete (freed pages are overwritten), foreign keys on, untrusted schema
 * off, then migrated. The node's mail store and a mailbox provider's store both open through it.
 */
import Database from 'better-sqlite3';
import type { Database as Db } from 'better-sqlite3';
import { chmodSync, closeSync, existsSync, openSync, statSync } from 'node:fs';
import type { Logger } from '../log.js';
import { StoreError, toStoreError } from './errors.js';
import { migrate, type Migration } from './schema.js';

export interface DatabaseOptions {
  busyTimeoutMs: number;
  walAutocheckpointPages: number;
  journalSizeLimit: number;
  /** Cap on the file's size, bytes (writes past it fail with DISK_FULL). */
  maxSizeBytes?: number;
}

export function openDatabase(path: string, logger: Logger, o: DatabaseOptions, migrations: readonly Migration[], what: string): { db: Db; schemaVersion: number } {
  // Created by us with 0600 before SQLite sees it; SQLite gives -wal and -shm the same mode.
  try {
    if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
    else if ((statSync(path).mode & 0o077) !== 0) {
      chmodSync(path, 0o600);
      logger.warn('store file was readable by others; tightened to 0600');
    }
  } catch (err) {
    throw new StoreError('IO', `cannot create the database file: ${(err as NodeJS.ErrnoException).code ?? err}`, { cause: err });
  }

  let db: Db | undefined;
  try {
    db = new Database(path, { fileMustExist: true, timeout: o.busyTimeoutMs });
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new StoreError('IO', `journal_mode WAL refused (got ${String(mode)})`);
    db.pragma('synchronous = FULL');
    // Statement journals (nested batches) and sort spills in memory: they never need to survive a
    // crash, and on disk each journalled page cost a write.
    db.pragma('temp_store = MEMORY');
    db.pragma('foreign_keys = ON');
    db.pragma(`busy_timeout = ${Math.trunc(o.busyTimeoutMs)}`);
    db.pragma(`wal_autocheckpoint = ${Math.trunc(o.walAutocheckpointPages)}`);
    db.pragma(`journal_size_limit = ${Math.trunc(o.journalSizeLimit)}`);
    if (o.maxSizeBytes !== undefined) {
      const pageSize = db.pragma('page_size', { simple: true }) as number;
      db.pragma(`max_page_count = ${Math.max(1, Math.floor(o.maxSizeBytes / pageSize))}`);
    }
    // Deleted bodies are overwritten rather than left in free pages; the schema runs no untrusted SQL.
    db.pragma('secure_delete = ON');
    db.pragma('trusted_schema = OFF');
    return { db, schemaVersion: migrate(db, logger, migrations).to };
  } catch (err) {
    db?.close();
    throw toStoreError(err, what);
  }
}
