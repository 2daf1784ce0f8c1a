/**
 * What a node writes to SQLite, recorded and replayed without the node (`bench pipeline`'s
 * store-ceiling line).
 *
 *   record:  better-sqlite3's Database.prototype is wrapped (in the bench's processes only, before a
 *            node opens its store): every statement execution (SQL and parameters) and every
 *            top-level transaction boundary is recorded while `recording` is on.
 *   replay:  a bare better-sqlite3 loop runs the recorded statements, with the same parameters,
 *            transaction by transaction, against a copy of the database as it was when recording
 *            began, with the store's pragmas (WAL, synchronous=FULL, …): the same schema,
 *            durability and batch sizes, and no node code. What it takes is what SQLite alone
 *            costs the node per message.
 */
import Database from 'better-sqlite3';
import { copyFileSync, existsSync } from 'node:fs';

/** One statement execution. */
export interface TracedStatement {
  sql: string;
  method: 'run' | 'get' | 'all' | 'iterate';
  params: unknown[];
}

/** A transaction (`explicit`: opened with db.transaction) or an auto-committed statement on its own, in commit order. */
export interface TracedTransaction {
  explicit: boolean;
  statements: TracedStatement[];
}

export interface StoreTrace {
  transactions: TracedTransaction[];
}

interface Recorder {
  recording: boolean;
  transactions: TracedTransaction[];
  depth: number;
  current: TracedStatement[] | null;
}

const recorder: Recorder = { recording: false, transactions: [], depth: 0, current: null };
let installed = false;

/** Wraps better-sqlite3 so statement executions can be recorded. Call before any store opens. */
export function installStoreTrace(): void {
  if (installed) return;
  installed = true;
  const proto = Database.prototype as unknown as {
    prepare(sql: string): Record<string, unknown>;
    transaction(fn: (...a: unknown[]) => unknown): Record<string, unknown>;
  };
  const prepare = proto.prepare;
  proto.prepare = function (this: unknown, sql: string) {
    const st = prepare.call(this, sql);
    for (const method of ['run', 'get', 'all', 'iterate'] as const) {
      const f = st[method] as (...a: unknown[]) => unknown;
      st[method] = (...params: unknown[]) => {
        if (recorder.recording) {
          const s: TracedStatement = { sql, method, params };
          if (recorder.current) recorder.current.push(s);
          else recorder.transactions.push({ explicit: false, statements: [s] });
        }
        return f.apply(st, params);
      };
    }
    return st;
  };
  const transaction = proto.transaction;
  proto.transaction = function (this: unknown, fn: (...a: unknown[]) => unknown) {
    const t = transaction.call(this, fn) as Record<string, (...a: unknown[]) => unknown>;
    const wrap = (variant: (...a: unknown[]) => unknown) => function (this: unknown, ...args: unknown[]) {
      const top = recorder.depth === 0;
      recorder.depth++;
      if (top && recorder.recording) recorder.current = [];
      try {
        return variant.apply(this, args);
      } finally {
        recorder.depth--;
        if (top) {
          if (recorder.current && recorder.current.length > 0) recorder.transactions.push({ explicit: true, statements: recorder.current });
          recorder.current = null;
        }
      }
    };
    const w = wrap(t as unknown as (...a: unknown[]) => unknown) as unknown as Record<string, unknown>;
    for (const v of ['deferred', 'immediate', 'exclusive', 'default']) if (t[v]) w[v] = wrap(t[v]!);
    return w;
  };
}

export function startRecording(): void {
  recorder.transactions = [];
  recorder.recording = true;
}

export function stopRecording(): StoreTrace {
  recorder.recording = false;
  const transactions = recorder.transactions;
  recorder.transactions = [];
  return { transactions };
}

const isWrite = (s: TracedStatement) => !/^\s*(SELECT|WITH)\b/i.test(s.sql);

/**
 * Statements, writes among them (anything but a SELECT), and commits: explicit transactions that
 * wrote, and writes that committed on their own (a read outside a transaction commits nothing).
 */
export function traceStats(t: StoreTrace): { statements: number; writes: number; transactions: number } {
  let statements = 0;
  let writes = 0;
  let transactions = 0;
  for (const tx of t.transactions) {
    statements += tx.statements.length;
    const w = tx.statements.filter(isWrite).length;
    writes += w;
    if (w > 0) transactions++;
  }
  return { statements, writes, transactions };
}

/** One statement's line of a breakdown: SQL collapsed to one line and cut, its executions and replay time. */
export interface StatementCost {
  sql: string;
  count: number;
  /** Replay time of its executions, ms (an auto-committed write includes its own commit). */
  ms: number;
}

/** The SQL of a statement collapsed to one line, cut to `width`: the key of a breakdown line. */
const sqlKey = (sql: string, width = 110) => sql.replace(/\s+/g, ' ').trim().slice(0, width);

/**
 * Executions per statement, most frequent first; with `replayed` (replay()'s result), the replay
 * time of each.
 */
export function traceBreakdown(t: StoreTrace, replayed?: Replayed): StatementCost[] {
  const counts = new Map<string, number>();
  for (const tx of t.transactions) {
    for (const st of tx.statements) {
      const key = sqlKey(st.sql);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return [...counts].map(([sql, count]) => ({ sql, count, ms: replayed?.bySql.get(sql) ?? 0 })).sort((a, b) => b.count - a.count);
}

/** Copies a database file (and its WAL, if any) as it is now; the writer should have checkpointed. */
export function snapshotDb(from: string, to: string): void {
  for (const suffix of ['', '-wal']) if (existsSync(from + suffix)) copyFileSync(from + suffix, to + suffix);
}

/** What a replay took: all of it, each statement (by sqlKey), and the explicit transactions' commits, ms. */
export interface Replayed {
  ms: number;
  bySql: Map<string, number>;
  /** BEGIN IMMEDIATE and COMMIT (with its fsyncs) of the explicit transactions. */
  commitMs: number;
}

/** A better-sqlite3 connection with the store's pragmas (WAL, synchronous=FULL, …). */
function openLikeStore(path: string): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('temp_store = MEMORY');
  db.pragma('foreign_keys = ON');
  db.pragma('wal_autocheckpoint = 1000');
  db.pragma(`journal_size_limit = ${16 * 1024 * 1024}`);
  db.pragma('secure_delete = ON');
  db.pragma('trusted_schema = OFF');
  return db;
}

/**
 * What one commit costs on this disk, µs: `n` transactions of one 4 KiB row each on a fresh file
 * at `path` opened like the store (its fsyncs are most of it).
 */
export function commitCost(path: string, n = 300): number {
  const db = openLikeStore(path);
  try {
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)');
    const ins = db.prepare('INSERT INTO t (v) VALUES (?)');
    const row = Buffer.alloc(4096, 0x61);
    const tx = db.transaction(() => ins.run(row));
    for (let i = 0; i < 20; i++) tx.immediate();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) tx.immediate();
    return ((performance.now() - t0) * 1000) / n;
  } finally {
    db.close();
  }
}

/**
 * Replays `trace` on the database at `path` with the store's pragmas, transaction by transaction,
 * timing each statement.
 */
export function replay(path: string, trace: StoreTrace): Replayed {
  const db = openLikeStore(path);
  try {
    const cache = new Map<string, { st: Database.Statement; key: string }>();
    const stmt = (sql: string) => {
      let s = cache.get(sql);
      if (!s) cache.set(sql, (s = { st: db.prepare(sql), key: sqlKey(sql) }));
      return s;
    };
    const bySql = new Map<string, number>();
    let inExplicit = 0;
    let explicit = false;
    const exec = (s: TracedStatement) => {
      const { st: p, key } = stmt(s.sql);
      const t = performance.now();
      if (s.method === 'iterate') for (const _ of p.iterate(...s.params)) void _;
      else (p[s.method] as (...a: unknown[]) => unknown)(...s.params);
      const dt = performance.now() - t;
      bySql.set(key, (bySql.get(key) ?? 0) + dt);
      if (explicit) inExplicit += dt;
    };
    let explicitMs = 0;
    const t0 = performance.now();
    for (const tx of trace.transactions) {
      if (!tx.explicit) exec(tx.statements[0]!);
      else {
        const t = performance.now();
        explicit = true;
        db.transaction(() => tx.statements.forEach(exec)).immediate();
        explicit = false;
        explicitMs += performance.now() - t;
      }
    }
    const ms = performance.now() - t0;
    return { ms, bySql, commitMs: explicitMs - inExplicit };
  } finally {
    db.close();
  }
}

/**
 * The same trace with every `factor` consecutive explicit transactions (and the auto-committed
 * statements between them) joined into one: what the store would cost if the node committed
 * `factor` times as many messages per transaction, with the same statements.
 */
export function regroup(t: StoreTrace, factor: number): StoreTrace {
  if (factor <= 1) return t;
  const out: TracedTransaction[] = [];
  let cur: TracedStatement[] = [];
  let joined = 0;
  for (const tx of t.transactions) {
    cur.push(...tx.statements);
    if (tx.explicit && ++joined >= factor) {
      out.push({ explicit: true, statements: cur });
      cur = [];
      joined = 0;
    }
  }
  if (cur.length > 0) out.push({ explicit: true, statements: cur });
  return { transactions: out };
}
