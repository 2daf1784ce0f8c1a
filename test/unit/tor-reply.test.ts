/** The control-reply parser, fed canned replies in the shapes control-spec shows, split anywhere. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ReplyParser, TorProtocolError, parseArgs, parseBootstrap, parseGetInfo, parseHsDesc, type Reply } from '../../src/tor/index.js';

const crlf = (...lines: string[]) => lines.map((l) => l + '\r\n').join('');

const PROTOCOLINFO = crlf(
  '250-PROTOCOLINFO 1',
  '250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/home/atagar/.tor/control_auth_cookie"',
  '250-VERSION Tor="0.4.9.11"',
  '250 OK',
);
const GETINFO_DATA = crlf('250+config-text=', 'ControlPort 9051', '..leading dot', '.', '250-version=0.4.9.11', '250 OK');
const AUTHCHALLENGE = crlf(
  '250 AUTHCHALLENGE SERVERHASH=B16F72DACD4B5ED1531F3FCC04B593D46A1E30267E636EA7C7F8DD7A2B7BAA05 SERVERNONCE=653574272ABBB49395BD1060D642D653CFB7A2FCE6A4955BCFED819703A9998C',
);
const ADD_ONION = crlf('250-ServiceID=pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd', '250 OK');
const STATUS_CLIENT = crlf('650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=85 TAG=ap_conn_done SUMMARY="Connected to a relay to build circuits"');
const HS_DESC = crlf(
  '650 HS_DESC UPLOADED pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd UNKNOWN $D82E1334209EE476C5D68EE2CF2236F15AF6CB4A~auth0',
);
const CONF_CHANGED = crlf('650-CONF_CHANGED', '650-SocksPort=9050', '650 OK');
const NS_EVENT = crlf('650+NS', 'r relay0 AAAA 2026-01-01 00:00:00 127.0.0.1 15003 0', 's Fast Running', '.', '650 OK');
const ERR = crlf('552 Unrecognized key "nope"');
const ERR2 = crlf('512 Failed to decode ED25519-V3 key');

const ALL = PROTOCOLINFO + STATUS_CLIENT + GETINFO_DATA + AUTHCHALLENGE + CONF_CHANGED + ADD_ONION + HS_DESC + NS_EVENT + ERR + ERR2;

function parseAll(chunks: string[]): Reply[] {
  const p = new ReplyParser();
  const out: Reply[] = [];
  for (const c of chunks) out.push(...p.feed(Buffer.from(c, 'utf8')));
  assert.ok(p.idle);
  return out;
}

function checkAll(replies: Reply[]): void {
  assert.deepEqual(replies.map((r) => r.status), [250, 650, 250, 250, 650, 250, 650, 650, 552, 512]);
  const [pi, sc, gi, ac, cc, ao, hs, ns, e1, e2] = replies as [Reply, Reply, Reply, Reply, Reply, Reply, Reply, Reply, Reply, Reply];
  assert.equal(pi.lines.length, 4);
  assert.deepEqual(pi.lines.map((l) => l.sep), ['-', '-', '-', ' ']);
  assert.equal(parseArgs(pi.lines[1]!.text.slice(5)).kv.get('COOKIEFILE'), '/home/atagar/.tor/control_auth_cookie');
  assert.deepEqual(parseBootstrap(sc.lines[0]!.text), { progress: 85, tag: 'ap_conn_done', summary: 'Connected to a relay to build circuits' });
  const info = parseGetInfo(gi);
  assert.equal(info.get('config-text'), 'ControlPort 9051\n.leading dot');
  assert.equal(info.get('version'), '0.4.9.11');
  assert.equal(gi.lines[0]!.sep, '+');
  assert.equal(parseArgs(ac.lines[0]!.text).kv.get('SERVERNONCE'), '653574272ABBB49395BD1060D642D653CFB7A2FCE6A4955BCFED819703A9998C');
  assert.deepEqual(cc.lines.map((l) => l.text), ['CONF_CHANGED', 'SocksPort=9050', 'OK']);
  assert.equal(ao.lines[0]!.text, 'ServiceID=pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd');
  assert.deepEqual(parseHsDesc(hs.lines[0]!.text), {
    action: 'UPLOADED', address: 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd', authType: 'UNKNOWN', hsDir: '$D82E1334209EE476C5D68EE2CF2236F15AF6CB4A~auth0',
  });
  assert.equal(ns.lines[0]!.data, 'r relay0 AAAA 2026-01-01 00:00:00 127.0.0.1 15003 0\ns Fast Running');
  assert.equal(e1.lines[0]!.text, 'Unrecognized key "nope"');
  assert.equal(e2.status, 512);
}

test('canned replies parse in one piece', () => {
  checkAll(parseAll([ALL]));
});

test('canned replies parse the same when split at arbitrary byte boundaries', () => {
  const bytes = Buffer.from(ALL, 'utf8');
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 40 }), (cuts) => {
      const sorted = [...cuts].sort((x, y) => x - y);
      const p = new ReplyParser();
      const out: Reply[] = [];
      let prev = 0;
      for (const c of [...sorted, bytes.length]) {
        out.push(...p.feed(bytes.subarray(prev, c)));
        prev = c;
      }
      checkAll(out);
    }),
    { numRuns: 300 },
  );
});

test('one byte at a time', () => {
  const bytes = Buffer.from(ALL, 'utf8');
  const p = new ReplyParser();
  const out: Reply[] = [];
  for (let i = 0; i < bytes.length; i++) out.push(...p.feed(bytes.subarray(i, i + 1)));
  checkAll(out);
});

test('an event arriving inside a multi-line reply does not corrupt it', () => {
  const out = parseAll([crlf('250-version=0.4.9.11', '650 STATUS_CLIENT NOTICE CIRCUIT_ESTABLISHED', '250 OK')]);
  assert.deepEqual(out.map((r) => r.status), [650, 250]);
  assert.equal(out[1]!.lines.length, 2);
});

test('bare LF line endings are accepted', () => {
  const out = parseAll(['250-a=b\n250 OK\n']);
  assert.equal(parseGetInfo(out[0]!).get('a'), 'b');
});

test('malformed lines throw TorProtocolError and poison the parser', () => {
  for (const bad of ['25 OK\r\n', 'abc OK\r\n', '250OK\r\n', '250*OK\r\n', '\r\n']) {
    const p = new ReplyParser();
    assert.throws(() => p.feed(bad), TorProtocolError, JSON.stringify(bad));
    assert.throws(() => p.feed('250 OK\r\n'), TorProtocolError);
  }
});

test('limits: an over-long line or reply is refused', () => {
  const p = new ReplyParser({ maxLineBytes: 64 });
  assert.throws(() => p.feed('250 ' + 'x'.repeat(100)), TorProtocolError);
  const q = new ReplyParser({ maxReplyBytes: 100 });
  assert.throws(() => {
    for (let i = 0; i < 20; i++) q.feed('250-key=value\r\n');
  }, TorProtocolError);
});

test('parseArgs: quoted values with escapes, positional words, empty values', () => {
  const { positional, kv } = parseArgs('NOTICE BOOTSTRAP PROGRESS=5 SUMMARY="say \\"hi\\"\\n\\\\" EMPTY= OCT="\\101"');
  assert.deepEqual(positional, ['NOTICE', 'BOOTSTRAP']);
  assert.equal(kv.get('SUMMARY'), 'say "hi"\n\\');
  assert.equal(kv.get('EMPTY'), '');
  assert.equal(kv.get('OCT'), 'A');
  assert.throws(() => parseArgs('A="unterminated'), TorProtocolError);
});

test('parseBootstrap: GETINFO form, warnings, and non-bootstrap lines', () => {
  assert.deepEqual(parseBootstrap('NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"'), { progress: 100, tag: 'done', summary: 'Done' });
  assert.deepEqual(parseBootstrap('WARN BOOTSTRAP PROGRESS=10 TAG=conn_done SUMMARY="x" WARNING="Connection refused" REASON=CONNECTREFUSED'), {
    progress: 10, tag: 'conn_done', summary: 'x', warning: 'Connection refused',
  });
  assert.equal(parseBootstrap('NOTICE CIRCUIT_ESTABLISHED'), null);
  assert.equal(parseBootstrap('NOTICE BOOTSTRAP PROGRESS=101'), null);
  assert.equal(parseHsDesc('HS_DESC UPLOAD x'), null);
  assert.equal(parseHsDesc('HS_DESC FAILED abc NO_AUTH $X~y DESCID REASON=NOT_FOUND')?.reason, 'NOT_FOUND');
});
