import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { WebSocket } from 'ws';
import { API_METHODS, createApiServer, validate, type ApiEvent, type ApiServer, type Handler } from '../../src/api/index.js';
import { silentLogger } from '../../src/log.js';
import { CryptoError } from '../../src/crypto/index.js';

const TOKEN = 'a'.repeat(64);
let server: ApiServer;
const listeners = new Set<(ev: ApiEvent) => void>();

before(async () => {
  const handlers: Record<string, Handler> = Object.fromEntries(API_METHODS.map((m) => [m.name, () => ({ echo: m.name })]));
  handlers['messages.send'] = (p: Record<string, unknown>) => ({ id: '0'.repeat(32), state: 'queued', to: p.to as string });
  handlers['messages.get'] = () => {
    throw new CryptoError('BAD_ONION_ADDRESS', 'nope');
  };
  server = await createApiServer({
    token: TOKEN, methods: API_METHODS, handlers, logger: silentLogger(),
    events: { subscribe: (l) => (listeners.add(l), () => listeners.delete(l)) },
  });
});
after(() => server.close());

/** Raw HTTP so tests can set Host and Origin freely (fetch forbids both). */
function http(method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, method, path, headers: { host: `127.0.0.1:${server.port}`, ...headers } }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const rpc = (body: unknown, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }) =>
  http('POST', '/rpc', { 'content-type': 'application/json', ...headers }, JSON.stringify(body));

test('requests without the token, or with a wrong one, are refused', async () => {
  const call = { jsonrpc: '2.0', id: 1, method: 'node.address' };
  assert.equal((await rpc(call, {})).status, 401);
  assert.equal((await rpc(call, { authorization: `Bearer ${'b'.repeat(64)}` })).status, 401);
  assert.equal((await rpc(call, { authorization: `Bearer ${TOKEN.slice(1)}` })).status, 401);
  const ok = await rpc(call);
  assert.equal(ok.status, 200);
  assert.deepEqual(JSON.parse(ok.body).result, { echo: 'node.address' });
});

test('a foreign Host (DNS rebinding) or a foreign Origin (CSRF) is refused even with the token', async () => {
  const call = { jsonrpc: '2.0', id: 1, method: 'node.address' };
  const auth = { authorization: `Bearer ${TOKEN}` };
  assert.equal((await rpc(call, { ...auth, host: `evil.example:${server.port}` })).status, 403);
  assert.equal((await rpc(call, { ...auth, host: '127.0.0.1:1' })).status, 403);
  assert.equal((await rpc(call, { ...auth, origin: 'http://evil.example' })).status, 403);
  assert.equal((await rpc(call, { ...auth, origin: `http://127.0.0.1:${server.port + 1}` })).status, 403);
  assert.equal((await rpc(call, { ...auth, origin: `http://localhost:${server.port}` })).status, 200);
});

test('login URL sets an HttpOnly SameSite=Strict cookie that authenticates', async () => {
  assert.equal((await http('GET', `/login?token=wrong`, {})).status, 401);
  const login = await http('GET', `/login?token=${TOKEN}`, {});
  assert.equal(login.status, 303);
  const cookie = String((login.headers['set-cookie'] as string[])[0]);
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
  const res = await rpc({ jsonrpc: '2.0', id: 2, method: 'node.status' }, { cookie: cookie.split(';')[0]! });
  assert.equal(res.status, 200);
});

test('JSON-RPC errors: parse, invalid request, unknown method, invalid params, typed app errors, batches', async () => {
  const parse = await http('POST', '/rpc', { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, '{nope');
  assert.equal(JSON.parse(parse.body).error.code, -32700);
  assert.equal(JSON.parse((await rpc({ id: 1, method: 'x' })).body).error.code, -32600);
  assert.equal(JSON.parse((await rpc({ jsonrpc: '2.0', id: 1, method: 'nope' })).body).error.code, -32601);
  const bad = JSON.parse((await rpc({ jsonrpc: '2.0', id: 1, method: 'messages.send', params: { subject: 3 } })).body).error;
  assert.equal(bad.code, -32602);
  assert.match(bad.message, /params\.to is required/);
  const extra = JSON.parse((await rpc({ jsonrpc: '2.0', id: 1, method: 'messages.send', params: { to: 'x', bogus: 1 } })).body).error;
  assert.equal(extra.data.code, 'INVALID_PARAMS');
  const app = JSON.parse((await rpc({ jsonrpc: '2.0', id: 1, method: 'messages.get', params: { id: 'abcd' } })).body).error;
  assert.deepEqual([app.code, app.data.code], [-32000, 'BAD_ONION_ADDRESS']);
  const batch = JSON.parse((await rpc([{ jsonrpc: '2.0', id: 1, method: 'node.address' }, { jsonrpc: '2.0', method: 'node.status' }, { jsonrpc: '2.0', id: 3, method: 'nope' }])).body);
  assert.equal(batch.length, 2, 'notifications get no response');
  assert.equal(batch[1].error.code, -32601);
});

test('OpenRPC document lists every method with its params, and validates as declared', async () => {
  const res = await http('GET', '/openrpc.json', { authorization: `Bearer ${TOKEN}` });
  const doc = JSON.parse(res.body);
  assert.equal(doc.openrpc, '1.2.6');
  assert.deepEqual(doc.methods.map((m: { name: string }) => m.name).sort(), API_METHODS.map((m) => m.name).sort());
  const send = doc.methods.find((m: { name: string }) => m.name === 'messages.send');
  assert.ok(send.params.some((p: { name: string; required: boolean }) => p.name === 'to' && p.required));
  for (const m of API_METHODS) {
    assert.equal(m.params.type, 'object', `${m.name} takes params by name`);
    assert.deepEqual(validate(m.params, {}).filter((e) => !e.endsWith('is required')), [], `${m.name}: {} fails only on required fields`);
  }
  const discover = JSON.parse((await rpc({ jsonrpc: '2.0', id: 1, method: 'rpc.discover' })).body).result;
  assert.deepEqual(discover, doc);
});

test('WebSocket: token and origin checked on upgrade; calls and subscribed events flow', async () => {
  const url = `ws://127.0.0.1:${server.port}/ws`;
  const refused = (headers: Record<string, string>) =>
    new Promise<number>((resolve) => {
      const ws = new WebSocket(url, { headers });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
      ws.on('error', () => {});
    });
  assert.equal(await refused({}), 401);
  assert.equal(await refused({ authorization: `Bearer ${TOKEN}`, origin: 'http://evil.example' }), 403);
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${TOKEN}` } });
  await new Promise((r) => ws.once('open', r));
  const messages: any[] = [];
  ws.on('message', (d) => messages.push(JSON.parse(d.toString())));
  ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'events.subscribe', params: { types: ['message.received'] } }));
  ws.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'node.address' }));
  const until = async (pred: () => boolean) => {
    for (let i = 0; i < 100 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(pred());
  };
  await until(() => messages.length >= 2);
  for (const l of listeners) l({ type: 'tor.status', bootstrap: 50 });
  for (const l of listeners) l({ type: 'message.received', id: 'x' });
  await until(() => messages.some((m) => m.method === 'event'));
  const events = messages.filter((m) => m.method === 'event');
  assert.deepEqual(events.map((e) => e.params.type), ['message.received'], 'filtered by subscribed types');
  ws.close();
});
