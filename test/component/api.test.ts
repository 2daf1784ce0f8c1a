import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { WebSocket } from 'ws';
import { API_METHODS, createApiServer, validate, type ApiEvent, type ApiServer, type Handler, type JsonSchema } from '../../src/api/index.js';
import type { ApiLimits } from '../../src/limits.js';
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

/** Redeems a fresh login code as the sign-in page does; returns the cookie pair and the page secret. */
async function signIn(): Promise<{ cookie: string; pageSecret: string; setCookie: string }> {
  const link = JSON.parse((await rpc({ jsonrpc: '2.0', id: 1, method: 'sessions.loginLink' })).body).result as { url: string };
  const code = new URL(link.url).searchParams.get('code')!;
  const res = await http('POST', '/session', { 'content-type': 'application/json', origin: `http://127.0.0.1:${server.port}` }, JSON.stringify({ code }));
  assert.equal(res.status, 200, res.body);
  const setCookie = String((res.headers['set-cookie'] as string[])[0]);
  return { cookie: setCookie.split(';')[0]!, pageSecret: (JSON.parse(res.body) as { pageSecret: string }).pageSecret, setCookie };
}
const errCode = (r: { body: string }) => (JSON.parse(r.body) as { error: { data: { code: string } } }).error.data.code;

test('browser sign-in: a single-use code from the token holder buys a session cookie named for the port, never the token', async () => {
  const link = JSON.parse((await rpc({ jsonrpc: '2.0', id: 1, method: 'sessions.loginLink' })).body).result as { url: string; expiresAt: number };
  const u = new URL(link.url);
  assert.equal(u.origin, `http://127.0.0.1:${server.port}`);
  assert.equal(u.pathname, '/login');
  assert.ok(!link.url.includes(TOKEN));
  const code = u.searchParams.get('code')!;
  const post = (c: string) => http('POST', '/session', { 'content-type': 'application/json' }, JSON.stringify({ code: c }));
  const first = await post(code);
  assert.equal(first.status, 200);
  const setCookie = String((first.headers['set-cookie'] as string[])[0]);
  assert.match(setCookie, new RegExp(`^onionpost_session_${server.port}=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=/; Max-Age=604800$`));
  assert.ok(!setCookie.includes(TOKEN) && !first.body.includes(TOKEN), 'the token is in neither the cookie nor the answer');
  const again = await post(code);
  assert.equal(again.status, 401);
  assert.equal(errCode(again), 'LOGIN_CODE_USED');
  assert.equal(errCode(await post('nonsense')), 'LOGIN_CODE_UNKNOWN');
  assert.equal((await post('')).status, 401);
  // The old token-in-the-URL login is gone (no UI here, so not even a page).
  assert.equal((await http('GET', `/login?token=${TOKEN}`, {})).status, 404);
  // The token in a cookie opens nothing.
  assert.equal((await rpc({ jsonrpc: '2.0', id: 1, method: 'node.address' }, { cookie: `onionpost_session_${server.port}=${TOKEN}` })).status, 401);
  assert.equal((await rpc({ jsonrpc: '2.0', id: 1, method: 'node.address' }, { cookie: `onionpost_session=${TOKEN}` })).status, 401);
});

test('a session needs its cookie and its page secret together; it cannot mint links; sign-out and revoke-all end it', async () => {
  const a = await signIn();
  const call = { jsonrpc: '2.0', id: 1, method: 'node.address' };
  assert.equal((await rpc(call, { cookie: a.cookie, 'x-onionpost-session': a.pageSecret })).status, 200);
  // What another service on 127.0.0.1 receives from the browser is the cookie alone: useless.
  const cookieOnly = await rpc(call, { cookie: a.cookie });
  assert.equal(cookieOnly.status, 401);
  assert.equal(errCode(cookieOnly), 'SESSION_ENDED');
  assert.equal(errCode(await rpc(call, { 'x-onionpost-session': a.pageSecret })), 'UNAUTHORIZED');
  const mint = JSON.parse((await rpc({ jsonrpc: '2.0', id: 1, method: 'sessions.loginLink' }, { cookie: a.cookie, 'x-onionpost-session': a.pageSecret })).body);
  assert.equal(mint.error.data.code, 'TOKEN_ONLY');

  // Sign-out needs the whole session (a stolen cookie cannot even sign the user out) and clears the cookie.
  const b = await signIn();
  const stolen = await http('DELETE', '/session', { cookie: b.cookie });
  assert.deepEqual(JSON.parse(stolen.body), { signedOut: false });
  assert.equal((await rpc(call, { cookie: b.cookie, 'x-onionpost-session': b.pageSecret })).status, 200);
  const out = await http('DELETE', '/session', { cookie: b.cookie, 'x-onionpost-session': b.pageSecret });
  assert.deepEqual(JSON.parse(out.body), { signedOut: true });
  assert.match(String((out.headers['set-cookie'] as string[])[0]), new RegExp(`^onionpost_session_${server.port}=; .*Max-Age=0$`));
  assert.equal(errCode(await rpc(call, { cookie: b.cookie, 'x-onionpost-session': b.pageSecret })), 'SESSION_ENDED');

  // The WebSocket of a session: page secret as subprotocol; closed when all sessions are revoked.
  const url = `ws://127.0.0.1:${server.port}/ws`;
  const refusedWs = await new Promise<number>((resolve) => {
    const ws = new WebSocket(url, ['onionpost'], { headers: { cookie: a.cookie } });
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('open', () => resolve(101));
    ws.on('error', () => {});
  });
  assert.equal(refusedWs, 401, 'the cookie alone does not open the WebSocket');
  const ws = new WebSocket(url, ['onionpost', `onionpost.session.${a.pageSecret}`], { headers: { cookie: a.cookie } });
  await new Promise((r) => ws.once('open', r));
  assert.equal(ws.protocol, 'onionpost', 'the secret is never echoed back');
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  const revoked = JSON.parse((await rpc({ jsonrpc: '2.0', id: 1, method: 'sessions.revokeAll' })).body).result;
  assert.ok(revoked.revoked >= 1);
  assert.equal(await closed, 4001);
  assert.equal(errCode(await rpc(call, { cookie: a.cookie, 'x-onionpost-session': a.pageSecret })), 'SESSION_ENDED');
});

test('sign-in from a foreign origin (another port on 127.0.0.1) is refused', async () => {
  const link = JSON.parse((await rpc({ jsonrpc: '2.0', id: 1, method: 'sessions.loginLink' })).body).result as { url: string };
  const code = new URL(link.url).searchParams.get('code')!;
  const res = await http('POST', '/session', { 'content-type': 'application/json', origin: `http://127.0.0.1:${server.port + 1}` }, JSON.stringify({ code }));
  assert.equal(res.status, 403);
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

// ── limits and validation (issue 15 items 6 and 7): each test failed before its fix ─────────────

/** A server with small limits and handlers that count their calls and can answer big. */
async function limitedServer(limits: Partial<ApiLimits>) {
  const calls: string[] = [];
  const handlers: Record<string, Handler> = Object.fromEntries(API_METHODS.map((m) => [m.name, (p: Record<string, unknown>) => {
    calls.push(m.name);
    // messages.inbox answers `limit` KiB, so tests choose the answer's size.
    return m.name === 'messages.inbox' ? ['x'.repeat(1024 * ((p.limit as number | undefined) ?? 1))] : { ok: true };
  }]));
  const s = await createApiServer({ token: TOKEN, methods: API_METHODS, handlers, logger: silentLogger(), limits, events: { subscribe: () => () => {} } });
  const post = (body: string) => new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: s.port, method: 'POST', path: '/rpc', headers: { host: `127.0.0.1:${s.port}`, 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` } }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
    });
    req.on('error', reject);
    req.end(body);
  });
  return { s, calls, post };
}

test('a batch over the cap is refused as a whole with BATCH_TOO_LARGE, and none of it runs', async () => {
  const { s, calls, post } = await limitedServer({ maxBatch: 4 });
  try {
    const batch = (n: number) => JSON.stringify(Array.from({ length: n }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'node.address' })));
    const over = JSON.parse((await post(batch(5))).body);
    assert.equal(over.error.data.code, 'BATCH_TOO_LARGE');
    assert.equal(calls.length, 0);
    assert.equal(JSON.parse((await post(batch(4))).body).length, 4);
    assert.equal(calls.length, 4);
  } finally {
    await s.close();
  }
});

test('an answer over the cap is ANSWER_TOO_LARGE; the rest of its batch does not run', async () => {
  const { s, calls, post } = await limitedServer({ maxAnswerBytes: 10 * 1024 });
  try {
    const one = JSON.parse((await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'messages.inbox', params: { limit: 11 } }))).body);
    assert.equal(one.error.data.code, 'ANSWER_TOO_LARGE');
    assert.equal(one.error.code, -32011);
    const call = (id: number, limit: number) => ({ jsonrpc: '2.0', id, method: 'messages.inbox', params: { limit } });
    calls.length = 0;
    const out = JSON.parse((await post(JSON.stringify([call(1, 4), call(2, 4), call(3, 4), call(4, 1)]))).body) as { id: number; result?: unknown; error?: { data: { code: string } } }[];
    assert.deepEqual(out.map((a) => a.error?.data.code ?? 'ok'), ['ok', 'ok', 'ANSWER_TOO_LARGE', 'ANSWER_TOO_LARGE']);
    assert.equal(calls.length, 3, 'the call after the one that did not fit was not run');
  } finally {
    await s.close();
  }
});

test('a request body over the cap is refused with BODY_TOO_LARGE', async () => {
  const { s, calls, post } = await limitedServer({ maxBodyBytes: 1024 });
  try {
    const res = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'messages.send', params: { to: 'x', body: 'y'.repeat(2000) } }));
    assert.equal(res.status, 413);
    assert.equal(JSON.parse(res.body).error.data.code, 'BODY_TOO_LARGE');
    assert.equal(calls.length, 0);
  } finally {
    await s.close();
  }
});

test('__proto__, constructor and prototype keys are refused before any work, wherever they are', async () => {
  const { s, calls, post } = await limitedServer({});
  try {
    for (const raw of [
      '{"jsonrpc":"2.0","id":1,"method":"messages.send","params":{"to":"x","__proto__":{"wait":true}}}',
      '{"jsonrpc":"2.0","id":1,"method":"messages.send","params":{"to":"x","constructor":{"prototype":{}}}}',
      '{"jsonrpc":"2.0","id":1,"method":"node.status","params":{"__proto__":null}}',
      '{"jsonrpc":"2.0","id":1,"method":"contacts.add","params":{"alias":"a","address":"b","prototype":1}}',
      '{"jsonrpc":"2.0","id":1,"method":"constructor","params":{}}',
      '{"jsonrpc":"2.0","id":1,"method":"__proto__","params":{}}',
    ]) {
      const err = JSON.parse((await post(raw)).body).error;
      assert.ok(err && ['INVALID_PARAMS', 'METHOD_NOT_FOUND'].includes(err.data.code), `${raw} → ${JSON.stringify(err)}`);
    }
    assert.deepEqual(calls, []);
  } finally {
    await s.close();
  }
});

test('hex parameters are checked as hex of the right length at the door, not accepted to fail later', async () => {
  const { s, calls, post } = await limitedServer({});
  try {
    const send = (params: Record<string, unknown>) => post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'messages.send', params: { to: 'bob', ...params } }));
    for (const bad of [{ threadId: 'z'.repeat(32) }, { threadId: 'A'.repeat(32) }, { inReplyTo: `${'0'.repeat(31)}g` }, { idempotencyKey: 'has space' }]) {
      assert.equal(JSON.parse((await send(bad)).body).error?.data.code, 'INVALID_PARAMS', JSON.stringify(bad));
    }
    for (const bad of ['zzzz', '0123 ', '../../']) {
      assert.equal(JSON.parse((await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'messages.get', params: { id: bad } }))).body).error?.data.code, 'INVALID_PARAMS', bad);
    }
    assert.deepEqual(calls, []);
    assert.ok(JSON.parse((await send({ threadId: 'a'.repeat(32), inReplyTo: '0'.repeat(32), idempotencyKey: 'k-1' })).body).result);
  } finally {
    await s.close();
  }
});

test('every parameter of every method is bounded by its schema, and events.subscribe is validated too', async () => {
  const walk = (schema: JsonSchema, path: string): string[] => {
    const out: string[] = [];
    if (schema.type === 'string' && schema.maxLength === undefined && !schema.enum) out.push(`${path}: string without maxLength`);
    if (schema.type === 'integer' && (schema.minimum === undefined || schema.maximum === undefined)) out.push(`${path}: integer without minimum and maximum`);
    if (schema.type === 'array') {
      if (schema.maxItems === undefined) out.push(`${path}: array without maxItems`);
      if (schema.items) out.push(...walk(schema.items, `${path}[]`));
    }
    if (schema.type === 'object') {
      if (schema.additionalProperties !== false) out.push(`${path}: object open to any key`);
      for (const [k, v] of Object.entries(schema.properties ?? {})) out.push(...walk(v, `${path}.${k}`));
    }
    return out;
  };
  assert.deepEqual(API_METHODS.flatMap((m) => walk(m.params, m.name)), []);

  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, { headers: { authorization: `Bearer ${TOKEN}` } });
  await new Promise((r) => ws.once('open', r));
  const answers: { id: number; error?: { data: { code: string } } }[] = [];
  ws.on('message', (d) => answers.push(JSON.parse(d.toString())));
  ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'events.subscribe', params: { types: 'message.received' } }));
  ws.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'events.subscribe', params: { types: ['x'], extra: 1 } }));
  ws.send(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'events.subscribe', params: { types: ['message.received'] } }));
  for (let i = 0; i < 200 && answers.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(answers.sort((a, b) => a.id - b.id).map((a) => a.error?.data.code ?? 'ok'), ['INVALID_PARAMS', 'INVALID_PARAMS', 'ok']);
  ws.close();
  // Over HTTP the WebSocket-only method does not exist.
  assert.equal(JSON.parse((await rpc({ jsonrpc: '2.0', id: 1, method: 'events.subscribe', params: {} })).body).error.data.code, 'METHOD_NOT_FOUND');
});

test('a WebSocket client that asks and never reads is cut once its unread answers pass the cap', async () => {
  const { s } = await limitedServer({ maxAnswerBytes: 64 * 1024 });
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}/ws`, { headers: { authorization: `Bearer ${TOKEN}` } });
    await new Promise((r) => ws.once('open', r));
    const sock = (ws as unknown as { _socket: import('node:net').Socket })._socket;
    sock.pause();
    let received = 0;
    ws.on('message', () => received++);
    const closed = new Promise<void>((r) => ws.once('close', () => r()));
    // 2,000 answers of 48 KiB (~96 MB) if it were all sent: far beyond any socket buffer.
    for (let i = 0; i < 2000; i++) ws.send(JSON.stringify({ jsonrpc: '2.0', id: i, method: 'messages.inbox', params: { limit: 48 } }));
    await new Promise((r) => setTimeout(r, 500));
    sock.resume();
    const cut = await Promise.race([closed.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 30_000))]);
    ws.terminate();
    assert.ok(cut, 'the server cut the connection');
    assert.ok(received < 2000, `cut before answering everything (received ${received})`);
  } finally {
    await s.close();
  }
});
