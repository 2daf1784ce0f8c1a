import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ImapReader, parseCommand, tokenize, type ReaderEvent } from '../../src/bridge/imap-reader.js';
import { parseFetchItems, parseFlags, parseSearch, parseSequenceSet, inSet, parseDate, formatInternalDate } from '../../src/bridge/imap-syntax.js';
import { atom, fetchResponse, serialize, tagged } from '../../src/bridge/imap-writer.js';
import { nameMailAddress, onionMailAddress, parseAddress, peerMailbox } from '../../src/bridge/address.js';

const LIMITS = { maxLineBytes: 1000, maxLiteralBytes: 5000, maxCommandBytes: 8000 };

function feed(r: ImapReader, ...chunks: string[]): ReaderEvent[] {
  const out: ReaderEvent[] = [];
  for (const c of chunks) {
    r.push(Buffer.from(c, 'latin1'));
    for (let ev = r.next(); ev; ev = r.next()) out.push(ev);
  }
  return out;
}

test('reader: commands split across chunks, CRLF or LF, several per chunk', () => {
  const r = new ImapReader(LIMITS);
  const evs = feed(r, 'a1 NO', 'OP\r\na2 capab', 'ility\na3 LOGOUT\r\n');
  assert.deepEqual(evs.map((e) => (e.type === 'command' ? [e.command.tag, e.command.name] : e.type)), [['a1', 'NOOP'], ['a2', 'CAPABILITY'], ['a3', 'LOGOUT']]);
});

test('reader: a synchronizing literal asks for continuation; LITERAL+ does not; bytes are kept exactly', () => {
  const r = new ImapReader(LIMITS);
  const evs = feed(r, 'a1 LOGIN {5}\r\n', 'al\x00\xffe {3+}\r\npw\n\r\n');
  assert.equal(evs[0]!.type, 'continue');
  const cmd = evs[1]!;
  assert.equal(cmd.type, 'command');
  if (cmd.type !== 'command') return;
  assert.deepEqual(cmd.command.args.map((a) => (a.type === 'string' ? [...a.value] : a)), [[0x61, 0x6c, 0x00, 0xff, 0x65], [0x70, 0x77, 0x0a]]);
});

test('reader: a zero-length literal and one split byte by byte', () => {
  const r = new ImapReader(LIMITS);
  const bytes = 'x SEARCH SUBJECT {0}\r\n TEXT {4}\r\nab\r\n\r\n';
  const evs = feed(r, ...bytes.split(''));
  const cmd = evs.find((e) => e.type === 'command');
  assert.ok(cmd && cmd.type === 'command');
  assert.deepEqual(cmd.command.args.map((a) => (a.type === 'string' ? a.value.toString('latin1') : a.type === 'atom' ? a.value : a.type)), ['SUBJECT', '', 'TEXT', 'ab\r\n']);
});

test('reader: limits — long line and big non-sync literal are fatal; big sync literal is refused and the connection goes on', () => {
  const r1 = new ImapReader(LIMITS);
  const [e1] = feed(r1, `a ${'x'.repeat(1200)}`);
  assert.deepEqual(e1, { type: 'bad', tag: 'a', message: 'line too long', fatal: true });
  const r2 = new ImapReader(LIMITS);
  assert.deepEqual(feed(r2, 't APPEND INBOX {999999+}\r\n')[0], { type: 'bad', tag: 't', message: 'literal too large', fatal: true });
  const r3 = new ImapReader(LIMITS);
  const evs = feed(r3, 't APPEND INBOX {999999}\r\n', 'u NOOP\r\n');
  assert.deepEqual(evs.map((e) => [e.type, e.type === 'bad' ? e.fatal : null]), [['bad', false], ['command', null]]);
  const r4 = new ImapReader(LIMITS);
  const many = Array.from({ length: 3 }, () => '{2999+}\r\n' + 'y'.repeat(2999)).join(' ');
  const e4 = feed(r4, `t X ${many}\r\n`);
  assert.equal(e4[0]?.type, 'bad', 'a command over maxCommandBytes is refused');
});

test('reader: line mode returns the next line raw (IDLE DONE), then parsing resumes', () => {
  const r = new ImapReader(LIMITS);
  r.push(Buffer.from('a IDLE\r\nDONE\r\nb NOOP\r\n'));
  const first = r.next();
  assert.equal(first?.type, 'command');
  r.lineMode = true;
  assert.deepEqual(r.next(), { type: 'line', text: 'DONE' });
  const third = r.next();
  assert.ok(third?.type === 'command' && third.command.name === 'NOOP');
});

test('tokenizer: lists, quoted escapes, NIL, atoms with bracketed sections', () => {
  const c = parseCommand('A001 UID fetch 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From "To")]<0.512> "a \\"q\\" \\\\") NIL');
  assert.equal(c.name, 'UID');
  assert.deepEqual(c.args[0], { type: 'atom', value: 'fetch' });
  const list = c.args[2]!;
  assert.equal(list.type, 'list');
  if (list.type !== 'list') return;
  assert.deepEqual(list.items[1], { type: 'atom', value: 'BODY.PEEK[HEADER.FIELDS (From "To")]<0.512>' });
  const q = list.items[2]!;
  assert.ok(q.type === 'string' && q.value.toString() === 'a "q" \\');
  assert.deepEqual(c.args[3], { type: 'nil' });
  for (const bad of ['', 'A', '+ NOOP', 'a LOGIN "x', 'a X (((', 'a X )', 'a X BODY[', 'a X "\\x"']) {
    assert.throws(() => parseCommand(bad), /./, bad);
  }
});

test('tokenizer never throws anything but ImapSyntaxError, and never hangs (property)', () => {
  fc.assert(fc.property(fc.string({ maxLength: 200 }), (s) => {
    try {
      tokenize(s);
    } catch (err) {
      assert.equal((err as Error).constructor.name, 'ImapSyntaxError');
    }
  }), { numRuns: 2000 });
  fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
    const r = new ImapReader(LIMITS);
    r.push(bytes);
    for (let i = 0; i < 1000 && r.next(); i++);
  }), { numRuns: 1000 });
});

test('sequence sets, FETCH items, sections, flags, dates', () => {
  assert.deepEqual(parseSequenceSet('1,3:5,9:*', 20), [[1, 1], [3, 5], [9, 20]]);
  assert.deepEqual(parseSequenceSet('*:4', 2), [[2, 4]]);
  assert.ok(inSet(parseSequenceSet('2:4', 9), 3) && !inSet(parseSequenceSet('2:4', 9), 5));
  for (const bad of ['0', '1:', 'a', '1::2', '01']) assert.throws(() => parseSequenceSet(bad, 5), /./, bad);

  const items = parseFetchItems(tokenize('(UID FLAGS BODY.PEEK[1.2.MIME] BODY[]<10.20> body[header.fields (subject from)] RFC822.SIZE)')[0]);
  assert.deepEqual(items.map((i) => (i.kind === 'section' ? [i.label, i.peek, i.section.part, i.section.spec, i.partial] : i.kind)), [
    'UID', 'FLAGS', ['BODY[1.2.MIME]', true, [1, 2], 'MIME', null], ['BODY[]<10>', false, [], '', { start: 10, length: 20 }],
    ['BODY[HEADER.FIELDS (SUBJECT FROM)]', false, [], 'HEADER.FIELDS', null], 'RFC822.SIZE',
  ]);
  assert.deepEqual(parseFetchItems({ type: 'atom', value: 'fast' }).map((i) => i.kind), ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE']);
  for (const bad of ['BODY[MIME]', 'BODY[1.FOO]', 'BODYX', 'BINARY[1]', 'BODY[HEADER.FIELDS ()]']) assert.throws(() => parseFetchItems({ type: 'atom', value: bad }), /./, bad);

  assert.deepEqual(parseFlags(tokenize('(\\seen $Label \\FLAGGED)')[0]), ['\\Seen', '$Label', '\\Flagged']);
  assert.throws(() => parseFlags(tokenize('(\\Bogus)')[0]));
  assert.equal(parseDate('1-Feb-1994'), Date.UTC(1994, 1, 1));
  assert.equal(formatInternalDate(Date.UTC(1996, 6, 17, 2, 44, 25)), '17-Jul-1996 02:44:25 +0000');
});

test('SEARCH keys: implied AND, OR, NOT, lists, CHARSET', () => {
  assert.deepEqual(parseSearch(tokenize('CHARSET UTF-8 UNSEEN OR FROM "bob" (SUBJECT hi NOT DELETED) UID 3:*')), {
    op: 'and', keys: [
      { op: 'flag', flag: '\\Seen', set: false },
      { op: 'or', a: { op: 'text', where: 'from', value: 'bob' }, b: { op: 'and', keys: [{ op: 'text', where: 'subject', value: 'hi' }, { op: 'not', key: { op: 'flag', flag: '\\Deleted', set: true } }] } },
      { op: 'uid', set: '3:*' },
    ],
  });
  assert.deepEqual(parseSearch(tokenize('SINCE 1-Jan-2020')), { op: 'date', which: 'internal', cmp: 'since', day: Date.UTC(2020, 0, 1) });
  for (const bad of ['', 'FROM', 'CHARSET KOI8-R ALL', 'BOGUS', 'OR SEEN']) assert.throws(() => parseSearch(tokenize(bad)), /./, bad);
  assert.throws(() => parseSearch(tokenize('NOT '.repeat(300) + 'ALL')), /too complex/);
});

test('writer: quoted vs literal, NIL, nested lists, no CRLF injection in tagged text', () => {
  assert.equal(serialize(['a b', null, 5, atom('\\Seen'), 'é', 'x\r\ny']).toString(), '("a b" NIL 5 \\Seen {2}\r\né {4}\r\nx\r\ny)');
  assert.equal(serialize('quote"d').toString(), '{7}\r\nquote"d');
  assert.equal(fetchResponse(3, [['UID', 7], ['FLAGS', [atom('\\Seen')]]]).toString(), '* 3 FETCH (UID 7 FLAGS (\\Seen))\r\n');
  assert.equal(tagged('a1', 'NO', 'bad\r\n* OK injected', 'ALERT').toString(), 'a1 NO [ALERT] bad * OK injected\r\n');
});

test('address scheme: names, raw onions, what clients send, what we refuse', () => {
  const onion = 'a'.repeat(52) + 'aaad.onion';
  assert.deepEqual(parseAddress('alice@onionpost.onion'), { kind: 'name', name: 'alice', address: 'alice@onionpost.onion' });
  assert.deepEqual(parseAddress('<Bob.Smith@OnionPost>'), { kind: 'name', name: 'Bob.Smith', address: 'Bob.Smith@onionpost.onion' });
  assert.deepEqual(parseAddress(`anything@${onion.toUpperCase()}`), { kind: 'onion', onion, address: `mail@${onion}` });
  assert.equal(onionMailAddress(onion.replace('.onion', '')), `mail@${onion}`);
  assert.equal(nameMailAddress('carol'), 'carol@onionpost.onion');
  assert.equal(nameMailAddress('no spaces'), null);
  for (const bad of ['bob@example.com', 'bob', '@onionpost.onion', 'bob@', `x@${'a'.repeat(55)}.onion`, 'a b@onionpost.onion', `x@${'1'.repeat(56)}.onion`, 'x@onionpost.onion.evil.com']) {
    assert.equal(parseAddress(bad), null, bad);
  }
  assert.deepEqual(peerMailbox({ onion, registryName: 'dave', display: 'Dave' }), { name: 'Dave', address: 'dave@onionpost.onion' });
  assert.deepEqual(peerMailbox({ onion }), { name: '', address: `mail@${onion}` });
});
