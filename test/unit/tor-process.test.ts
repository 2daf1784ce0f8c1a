/** Pure pieces of process and testnet handling: version parsing, torrc rendering, file formats. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TorError, checkTor, compareTorVersions, findTor, parseTorVersion, renderNodeTorrc, renderTorrc } from '../../src/tor/index.js';
import { parseControlPortFile, parseSocksListeners, torFeatures } from '../../src/tor/process.js';
import { parseConsensusFlags } from '../../src/tor/testnet.js';

test('tor --version parsing and feature detection', () => {
  const v = parseTorVersion('Tor version 0.4.9.11.\nThis build of Tor is covered by the GNU General Public License');
  assert.deepEqual(v, { major: 0, minor: 4, micro: 9, patch: 11, status: '', text: '0.4.9.11' });
  const alpha = parseTorVersion('Tor version 0.4.9.2-alpha (git-8a1f2c2b6b0e8b3d).')!;
  assert.equal(alpha.status, 'alpha');
  assert.equal(alpha.text, '0.4.9.2-alpha');
  assert.equal(parseTorVersion('nonsense'), null);
  assert.ok(compareTorVersions('0.4.8.0', '0.4.7.16') > 0);
  assert.ok(compareTorVersions('0.4.9.10', '0.4.9.2') > 0);
  assert.equal(compareTorVersions(alpha, '0.4.9.2'), 0);
  assert.equal(torFeatures(v!).pow, true);
  assert.equal(torFeatures(alpha, 'relay: yes\npow: yes\n').pow, true);
  assert.equal(torFeatures(v!, 'relay: yes\npow: no\n').pow, false);
  assert.equal(torFeatures(parseTorVersion('Tor version 0.4.8.16.')!).pow, false);
  assert.equal(torFeatures(parseTorVersion('Tor version 0.4.9.1-alpha.')!).pow, false);
});

test('findTor: a configured path that does not exist is TOR_NOT_FOUND with an install hint when searching', async () => {
  await assert.rejects(findTor({ torPath: '/nonexistent/tor' }), (e: unknown) => e instanceof TorError && e.code === 'TOR_NOT_FOUND');
  // With an empty PATH the search falls back to /usr/sbin/tor (present on this machine) or fails with the hint.
  const found = await findTor({ path: '' }).catch((e: unknown) => e);
  if (found instanceof TorError) assert.match(found.message, /apt-get install tor/);
  else assert.equal(found, '/usr/sbin/tor');
  await assert.rejects(checkTor('/bin/true'), (e: unknown) => e instanceof TorError && e.code === 'TOR_VERSION_UNKNOWN');
});

test('renderTorrc: substitution, optional lines, repeated lines, refusals', () => {
  const tpl = '## doc\n# kept\nA {{a}}\nB {{b}}\nC {{c}} x\n';
  assert.equal(renderTorrc(tpl, { a: 1, b: null, c: ['p', 'q'] }), '# kept\nA 1\nC p x\nC q x\n');
  assert.throws(() => renderTorrc(tpl, { a: 1, b: 2 }), (e: unknown) => e instanceof TorError && e.code === 'BAD_ARGUMENT');
  assert.throws(() => renderTorrc('A {{a}}', { a: 'x\nControlPort 9051' }), TorError);
  assert.throws(() => renderTorrc('A {{a}}', { a: 'x # y' }), TorError);
});

test('the node torrc: auto ports, cookie auth, owner, absolute log; test-network lines only when joining', () => {
  const plain = renderNodeTorrc({ torDir: '/data/tor', ownerPid: 4242 });
  for (const line of [
    'DataDirectory /data/tor', 'ControlPort auto', 'ControlPortWriteToFile /data/tor/control.port', 'CookieAuthentication 1',
    'CookieAuthFile /data/tor/control_auth_cookie', 'SocksPort auto ExtendedErrors IsolateSOCKSAuth', 'SafeSocks 1',
    '__OwningControllerProcess 4242', 'Log notice file /data/tor/notice.log', 'GeoIPFile ""',
  ]) assert.ok(plain.split('\n').includes(line), line);
  assert.ok(!/TestingTorNetwork|DirAuthority|ShutdownWaitLength|\{\{/.test(plain));
  const net = renderNodeTorrc({ torDir: '/data/tor', ownerPid: 1, network: { dirAuthorities: ['auth0 orport=1 x', 'auth1 orport=2 y'] }, extraTorrc: ['SafeLogging 0'] });
  assert.ok(net.includes('TestingTorNetwork 1\nDirAuthority auth0 orport=1 x\nDirAuthority auth1 orport=2 y\n'));
  assert.ok(net.includes('ShutdownWaitLength 0'));
  assert.ok(net.endsWith('SafeLogging 0\n'));
  assert.throws(() => renderNodeTorrc({ torDir: '/d', ownerPid: 1, extraTorrc: ['A 1\nB 2'] }), TorError);
});

test('control port file, SOCKS listeners, consensus flags', () => {
  assert.equal(parseControlPortFile('PORT=127.0.0.1:43121\n'), 43121);
  assert.equal(parseControlPortFile('PORT=127.0.0.1:'), null);
  assert.equal(parseControlPortFile(''), null);
  assert.equal(parseSocksListeners('"127.0.0.1:9050"'), 9050);
  assert.equal(parseSocksListeners('"unix:/run/tor/socks" "127.0.0.1:39001"'), 39001);
  assert.equal(parseSocksListeners(''), null);
  const flags = parseConsensusFlags('network-status-version 3 microdesc\nr auth0 AAA 2026-01-01 00:00:00 127.0.0.1 22700 22750\nm xyz\ns Authority Fast HSDir Running Stable V2Dir Valid\nr relay0 BBB 2026-01-01 00:00:00 127.0.0.1 22703 0\ns Fast Running Valid\n');
  assert.ok(flags.get('auth0')?.has('HSDir'));
  assert.ok(!flags.get('relay0')?.has('Stable'));
});
