/**
 * A graceful stop drains the local API: requests already running finish and are answered before any
 * connection is cut, so a caller never sees an error for a send that committed (issue 15).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { API_METHODS, createApiServer, type ApiServer, type Handler } from '../../src/api/index.js';
import { silentLogger } from '../../src/log.js';
import { generateIdentity } from '../../src/crypto/index.js';
import { eventually, testNodes } from '../fixtures/nodes.js';

const TOKEN = 'd'.repeat(64);

/** One JSON-RPC call on a connection of its own; resolves with the status and body, or the socket error's code. */
function call(port: number, method: string, params: Record<string, unknown> = {}): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = request({
      host: '127.0.0.1', port, method: 'POST', path: '/rpc', agent: false,
      headers: { host: `127.0.0.1:${port}`, 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
      res.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    req.end(JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }));
  });
}

/** A server whose messages.send waits for `release()`, like a send whose commit is under way. */
async function gatedServer(drainTimeoutMs: number): Promise<{ api: ApiServer; entered: Promise<void>; release: () => void }> {
  let release!: () => void;
  let entered!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const enteredP = new Promise<void>((r) => (entered = r));
  const handlers: Record<string, Handler> = Object.fromEntries(API_METHODS.map((m) => [m.name, () => ({})]));
  handlers['messages.send'] = async () => {
    entered();
    await gate;
    return { id: 'a'.repeat(32), state: 'queued', to: 'x' };
  };
  const api = await createApiServer({ token: TOKEN, methods: API_METHODS, handlers, logger: silentLogger(), limits: { drainTimeoutMs } });
  return { api, entered: enteredP, release };
}

test('close() answers the requests already running, refuses new ones, then closes', async () => {
  const { api, entered, release } = await gatedServer(60_000);
  const running = call(api.port, 'messages.send', { to: 'bob' });
  await entered;
  let closed = false;
  const closing = api.close().then(() => (closed = true));
  assert.deepEqual(await call(api.port, 'node.status'), { error: 'ECONNREFUSED' }, 'no new connections once closing');
  assert.equal(closed, false, 'close() waits for the running request');
  release();
  const answer = await running;
  assert.ok('status' in answer, `answered, not cut: ${JSON.stringify(answer)}`);
  assert.equal(answer.status, 200);
  assert.equal(JSON.parse(answer.body).result.id, 'a'.repeat(32));
  await closing;
  assert.equal(api.close(), api.close(), 'idempotent');
});

test('close() waits no longer than the drain deadline for a request that does not finish', async () => {
  const { api, entered, release } = await gatedServer(200);
  const running = call(api.port, 'messages.send', { to: 'bob' });
  await entered;
  await api.close();
  assert.ok('error' in (await running), 'the straggler is cut');
  release();
});

test('a node stopped while sends are waiting answers every send that committed', async () => {
  const t = await testNodes('onionpost-drain-');
  try {
    const carol = await t.make('carol', { api: { token: TOKEN } });
    const port = Number(new URL(carol.apiUrl!).port);
    // An onion nobody serves: each send commits, then waits (wait: true) for an outcome that does not come.
    const offline = generateIdentity().onion;
    const calls = Array.from({ length: 10 }, (_, i) => call(port, 'messages.send', { to: offline, subject: `waiting ${i}`, body: 'x', wait: true, waitMs: 1_500 }));
    await eventually(() => carol.store.listMessages({ direction: 'out', limit: 100 }).length === 10, 10_000, 'all ten committed');
    await carol.close();
    const results = await Promise.all(calls);
    const answered = new Set(results.flatMap((r) => ('status' in r && r.status === 200 ? [(JSON.parse(r.body) as { result: { id: string } }).result.id] : [])));
    const db = new Database(join(t.root, 'carol.db'), { readonly: true });
    const stored = (db.prepare("SELECT id FROM messages WHERE direction = 'out'").all() as { id: string }[]).map((r) => r.id);
    db.close();
    assert.equal(stored.length, 10);
    assert.deepEqual(stored.filter((id) => !answered.has(id)), [], `every committed send was answered: ${JSON.stringify(results.filter((r) => !('status' in r)))}`);
  } finally {
    await t.cleanup();
  }
});
