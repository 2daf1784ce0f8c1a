import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/clock.js';
import { silentLogger } from '../../src/log.js';
import { openStore, type NewOutgoing, type NewIncoming } from '../../src/store/index.js';
import { bodyStructure, encodeWords, headerFields, idFromMessageId, partAt, safeMediaType } from '../../src/bridge/mime.js';
import { renderMail } from '../../src/bridge/render.js';
import { renderBounce } from '../../src/bridge/dsn.js';
import { parseSubmission } from '../../src/bridge/inbound.js';
import type { MailMessage } from '../../src/bridge/port.js';
import { serialize } from '../../src/bridge/imap-writer.js';

const ONION = `${'b'.repeat(52)}aaad.onion`;
const own = { name: '', address: `mail@${'c'.repeat(52)}aaad.onion` };
const ID = '0123456789abcdef0123456789abcdef';

function mail(over: Partial<MailMessage> = {}): MailMessage {
  return {
    id: ID, direction: 'in', kind: 'mail', peer: { onion: ONION, registryName: 'bob', label: 'Bob B.' }, subject: 'Hello', body: 'line one\nline two\n',
    attachments: [], threadId: ID, inReplyTo: null, createdAt: Date.UTC(2026, 0, 2, 3, 4, 5), receivedAt: Date.UTC(2026, 0, 2, 3, 4, 6),
    expiresAt: Date.UTC(2026, 1, 1), state: 'received', stateReason: null, ...over,
  };
}

test('a message renders to the same bytes every time; single part: BODYSTRUCTURE, part 1, header fields', () => {
  const a = renderMail(mail(), own, null);
  const b = renderMail(mail(), own, null);
  assert.ok(a.raw.equals(b.raw));
  const text = a.raw.toString();
  assert.match(text, /^Date: Fri, 02 Jan 2026 03:04:05 \+0000\r\nFrom: "Bob B\." <bob@onionpost\.onion>\r\n/);
  assert.match(text, /Message-ID: <0123456789abcdef0123456789abcdef@onionpost\.onion>\r\n/);
  assert.match(text, /\r\n\r\nline one\r\nline two\r\n$/);
  assert.equal(serialize(bodyStructure(a.root, true)).toString(), '("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 20 2 NIL NIL NIL NIL)');
  assert.equal(partAt(a.root, [1]), a.root);
  assert.equal(partAt(a.root, [2]), null);
  assert.equal(headerFields(a.root.header, ['SUBJECT', 'from'], false).toString(), 'From: "Bob B." <bob@onionpost.onion>\r\nSubject: Hello\r\n\r\n');
  assert.doesNotMatch(headerFields(a.root.header, ['SUBJECT'], true).toString(), /Subject/);
});

test('files: multipart/mixed with base64 parts whose bytes come back; a thread gives In-Reply-To and References', () => {
  const data = new Uint8Array(randomBytes(1000));
  const parent = 'f'.repeat(32);
  const r = renderMail(mail({ attachments: [{ name: 'ä.txt', mediaType: 'text/plain', data }, { name: 'x', mediaType: 'bad/type\r\nX-Evil: 1', data: new Uint8Array(3) }], threadId: 'e'.repeat(32), inReplyTo: parent }), own, null);
  assert.equal(r.root.type, 'multipart');
  const p2 = partAt(r.root, [2])!;
  assert.ok(Buffer.from(p2.body.toString('latin1'), 'base64').equals(Buffer.from(data)));
  assert.match(p2.header.toString(), /filename\*=utf-8''%C3%A4\.txt/);
  assert.match(partAt(r.root, [3])!.header.toString(), /Content-Type: application\/octet-stream/);
  assert.doesNotMatch(r.raw.toString(), /X-Evil/);
  assert.match(r.raw.toString(), new RegExp(`In-Reply-To: <${parent}@onionpost.onion>\\r\\nReferences: <${'e'.repeat(32)}@onionpost.onion>(\\r\\n)? <${parent}@onionpost.onion>`));
  const bs = serialize(bodyStructure(r.root, true)).toString();
  assert.match(bs, /"ATTACHMENT" \("FILENAME\*?" /i);
  assert.match(bs, /"MIXED" \("BOUNDARY" "=_op_0123456789abcdef0123456789abcdef"\)/);
});

test('header values cannot inject headers; non-ASCII becomes RFC 2047 words; media types are checked', () => {
  const r = renderMail(mail({ subject: 'hi\r\nBcc: evil@example.com', peer: { onion: ONION, registryName: null, label: 'x\r\nBcc: y' } }), own, null);
  assert.doesNotMatch(r.root.header.toString(), /\r\nBcc:/);
  assert.equal(encodeWords('plain'), 'plain');
  assert.equal(Buffer.from(encodeWords('Grüße').slice(10, -2), 'base64').toString(), 'Grüße');
  assert.ok(encodeWords('ü'.repeat(100)).split(' ').every((w) => w.length <= 75));
  assert.deepEqual(safeMediaType('Image/PNG'), ['image', 'png']);
  assert.deepEqual(safeMediaType('text/html; x'), ['application', 'octet-stream']);
  assert.equal(idFromMessageId(`<${ID}@onionpost.onion>`), ID);
  assert.equal(idFromMessageId('<abc@example.com>'), null);
});

test('bounces: multipart/report with the RFC 3464 fields for failed, expired and held', () => {
  for (const [state, action, status] of [['failed', 'failed', '5.0.0'], ['expired', 'failed', '5.4.7'], ['held', 'delayed', '4.7.0']] as const) {
    const r = renderBounce(mail({ direction: 'out', state, stateReason: 'because' }), state, own, Date.UTC(2026, 0, 3));
    const t = r.raw.toString();
    assert.match(t, /Content-Type: multipart\/report; report-type="delivery-status"; boundary=/);
    assert.match(t, new RegExp(`Final-Recipient: rfc822; bob@onionpost.onion\\r\\nAction: ${action}\\r\\nStatus: ${status.replace(/\./g, '\\.')}\\r\\nDiagnostic-Code: X-Onionpost; because`));
    assert.deepEqual(r.root.children.map((c) => `${c.type}/${c.subtype}`), ['text/plain', 'message/delivery-status', 'text/rfc822-headers']);
    assert.match(partAt(r.root, [3])!.body.toString(), /Message-ID: <0123456789abcdef0123456789abcdef@onionpost\.onion>/);
  }
});

test('submissions: headerless data is refused; HTML-only mail becomes text; 17 files are too many; our In-Reply-To is kept', async () => {
  await assert.rejects(parseSubmission(Buffer.from('\0\x01junk\r\n\r\nbody')), { code: 'BAD_MIME' });
  await assert.rejects(parseSubmission(Buffer.from('no header line\r\n\r\nbody')), { code: 'BAD_MIME' });
  const html = await parseSubmission(Buffer.from('Subject: h\r\nContent-Type: text/html\r\n\r\n<p>Hello <b>there</b></p>'));
  assert.match(html.body, /Hello there/i);
  const parts = Array.from({ length: 17 }, (_, i) => `--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=f${i}\r\n\r\nx\r\n`).join('');
  await assert.rejects(parseSubmission(Buffer.from(`Subject: many\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n${parts}--b--\r\n`)), { code: 'TOO_LARGE' });
  const reply = await parseSubmission(Buffer.from(`Subject: Re\r\nIn-Reply-To: <${ID}@onionpost.onion>\r\nReferences: <${'a'.repeat(32)}@onionpost.onion> <x@example.com>\r\n\r\nok`));
  assert.deepEqual([reply.inReplyTo, reply.references, reply.body], [ID, ['a'.repeat(32)], 'ok']);
});

test('mail folders: UIDs from the message log, Sent copies replaced on final states, bounces, \\Seen is the read state, stable across reopen', () => {
  const root = mkdtempSync(join(tmpdir(), 'onionpost-folders-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const clock = new ManualClock();
  const path = join(root, 'f.db');
  let store = openStore({ path, logger: silentLogger(), clock });
  const hex = () => randomBytes(16).toString('hex');
  const out: NewOutgoing = { id: hex(), kind: 'mail', peerIdentity: 'aa'.repeat(32), body: 'b', createdAt: 1, expiresAt: 1e12, envelope: new Uint8Array(10), envelopeHash: new Uint8Array(32) };
  const inc: NewIncoming = { id: hex(), kind: 'mail', peerIdentity: 'bb'.repeat(32), body: 'b', createdAt: 1, expiresAt: 1e12, receivedAt: 2, envelopeHash: new Uint8Array(32), receipt: new Uint8Array(64) };
  store.insertOutgoing(out);
  store.commitIncoming(inc);
  const f = store.mailFolders;
  assert.equal(f.sync(), true);
  assert.equal(f.sync(), false, 'nothing new the second time');
  assert.deepEqual(f.entries('INBOX').map((e) => [e.uid, e.ref, e.flags]), [[1, inc.id, []]]);
  assert.deepEqual(f.entries('Sent').map((e) => [e.uid, e.ref, e.version, e.flags]), [[1, out.id, 'queued', ['\\Seen']]]);
  store.transition(out.id, 'sending');
  store.transition(out.id, 'failed', { reason: 'no such peer' });
  f.sync();
  assert.deepEqual(f.entries('Sent').map((e) => [e.uid, e.version]), [[2, 'failed']], 'the copy is replaced under a new UID');
  assert.deepEqual(f.entries('INBOX').map((e) => e.ref), [inc.id, `dsn:${out.id}:failed`]);
  f.setFlags('INBOX', 1, ['\\Seen', '\\Flagged']);
  assert.equal(store.getMessage(inc.id)!.read, true);
  store.markRead(inc.id, false);
  assert.deepEqual(f.entries('INBOX')[0]!.flags, ['\\Flagged'], '\\Seen follows the node');
  assert.deepEqual(f.copy('INBOX', [1, 2, 99], 'Trash'), [[1, 1], [2, 2]]);
  f.expunge('INBOX', [1]);
  const validity = f.info('INBOX')!.uidValidity;
  store.close();
  store = openStore({ path, logger: silentLogger(), clock });
  assert.equal(store.mailFolders.info('INBOX')!.uidValidity, validity);
  assert.deepEqual(store.mailFolders.entries('INBOX').map((e) => e.uid), [2]);
  assert.equal(store.mailFolders.sync(), false, 'nothing re-added after a reopen');
  store.deleteMessage(inc.id);
  store.mailFolders.sync();
  assert.deepEqual(store.mailFolders.entries('Trash').map((e) => e.ref), [`dsn:${out.id}:failed`], 'entries of a deleted message go');
  store.close();
});
