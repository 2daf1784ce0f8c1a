/**
 * A private Tor network on 127.0.0.1 for tests, benchmarks and the sandbox, following the measured
 * recipe (research/tor-private-network.md): 3 directory authorities + `relays` relays, all with
 * TestingTorNetwork 1, started in phases:
 *
 *   keys (tor-gencert; cached in dir while valid and the ports are unchanged)
 *   → authorities → first consensus on every authority (≤ consensusTimeoutMs)
 *   → relays → a consensus listing every router with HSDir, Stable and Fast (≤ consensusTimeoutMs)
 *   → settle (12 s, so the relays' directory caches hold every microdescriptor) → ready
 *
 * Layout under `dir`:
 *   network.json             NetworkFile below: what joiners (readTestNetwork) and downTestNetwork read
 *   routers/<nick>/          each router's DataDirectory (keys/ kept across runs, the rest wiped)
 *   routers/<nick>/torrc, notice.log, stdout.log
 *
 * Ports: one block of 100 in 20000–31999 (outside the kernel's ephemeral range 32768–60999), each
 * probed free; ORPort = base + i, DirPort = base + 50 + i. A block used before in `dir` is preferred.
 *
 * Routers are owned by `ownerPid` (tor's __OwningControllerProcess) only when it is given: pass it for
 * a long-lived starter (the test runner); leave it out for a CLI that exits after `testnet up`, in
 * which case the routers are detached and run until `downTestNetwork(dir)`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants as fsc, openSync } from 'node:fs';
import { access, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import { join, resolve } from 'node:path';
import { findTor, type TestNetworkInfo } from './process.js';
import { TorError } from './errors.js';
import { readTemplate, renderTorrc } from './torrc.js';

export interface UpTestNetworkOptions {
  dir: string;
  /** Relays besides the 3 authorities (at least 2: fewer than 5 routers never works). Default 2. */
  relays?: number;
  /** First port of the block; default: the block used before in dir, else a free one found by probing. */
  basePort?: number;
  signal?: AbortSignal;
  log?: (line: string) => void;
  /** PID that owns the routers (they exit ~15 s after it dies). Omit for routers that outlive us. */
  ownerPid?: number;
  torPath?: string;
  /** Each consensus wait, ms. Default 60 000. */
  consensusTimeoutMs?: number;
  /** Pause after the full consensus, ms. Default 12 000. */
  settleMs?: number;
  templatesDir?: string;
}

export interface TestNetwork {
  dir: string;
  /** What launchTor's `network` option takes. */
  info: TestNetworkInfo;
  /** Stops every router (SIGTERM, then SIGKILL after 3 s). Same promise on every call. */
  down(): Promise<void>;
}

interface RouterFile {
  nickname: string;
  role: 'authority' | 'relay';
  pid: number;
  orPort: number;
  dirPort?: number;
  dataDir: string;
}

/** dir/network.json. */
interface NetworkFile {
  version: 1;
  dir: string;
  basePort: number;
  dirAuthorities: string[];
  pids: number[];
  routers: RouterFile[];
  ownerPid: number | null;
  startedAt: string;
  ready: boolean;
}

interface KeyCache {
  basePort: number;
  authorities: { nickname: string; v3ident: string; fingerprint: string; expires: string }[];
  relays: { nickname: string; fingerprint: string }[];
}

const AUTHORITIES = 3;
const BLOCK = 100;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function checkAbort(signal?: AbortSignal): void {
  if (signal?.aborted) throw new TorError('ABORTED', 'test network start aborted');
}

function portFree(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = net.createServer();
    s.once('error', () => r(false));
    s.listen(port, '127.0.0.1', () => s.close(() => r(true)));
  });
}

async function blockFree(base: number, routers: number): Promise<boolean> {
  for (let i = 0; i < routers; i++) {
    if (!(await portFree(base + i))) return false;
    if (i < AUTHORITIES && !(await portFree(base + 50 + i))) return false;
  }
  return true;
}

async function choosePorts(routers: number, preferred: number | undefined): Promise<number> {
  if (preferred !== undefined && (await blockFree(preferred, routers))) return preferred;
  const blocks = Array.from({ length: 120 }, (_, k) => 20000 + k * BLOCK);
  for (let i = blocks.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [blocks[i], blocks[j]] = [blocks[j]!, blocks[i]!];
  }
  for (const b of blocks) if (await blockFree(b, routers)) return b;
  throw new TorError('TESTNET_FAILED', 'no free port block in 20000–31999');
}

function runFile(path: string, args: string[], input?: string): Promise<string> {
  return new Promise((res, rej) => {
    const child = execFile(path, args, { timeout: 60_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) rej(new TorError('TESTNET_FAILED', `${path} ${args[0]} failed: ${stderr || err.message}`, { cause: err }));
      else res(stdout);
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

async function fingerprint(tor: string, dataDir: string): Promise<string> {
  const out = await runFile(tor, ['--ignore-missing-torrc', '-f', join(dataDir, 'no-such-torrc'), '--orport', '1', '--datadirectory', dataDir, '--list-fingerprint', '--quiet']);
  const line = out.trim().split('\n').pop() ?? '';
  const fp = line.split(' ').slice(1).join('');
  if (!/^[0-9A-F]{40}$/.test(fp)) throw new TorError('TESTNET_FAILED', `cannot read a relay fingerprint from: ${line}`);
  return fp;
}

/** Keys for every router: reused from dir/keys.json when the certificates last 7 more days and the ports match. */
async function ensureKeys(tor: string, dir: string, basePort: number, relays: number, log: (l: string) => void): Promise<KeyCache> {
  const cachePath = join(dir, 'keys.json');
  const cached = await readFile(cachePath, 'utf8').then((t) => JSON.parse(t) as KeyCache, () => null);
  const soon = Date.now() + 7 * 86400_000;
  if (
    cached &&
    cached.basePort === basePort &&
    cached.authorities.length === AUTHORITIES &&
    cached.relays.length >= relays &&
    cached.authorities.every((a) => Date.parse(a.expires) > soon)
  ) {
    log(`reusing cached router keys in ${dir}`);
    return { ...cached, relays: cached.relays.slice(0, relays) };
  }
  const started = Date.now();
  const gencertPath = await findGencert(join(tor, '..', 'tor-gencert'));
  const out: KeyCache = { basePort, authorities: [], relays: [] };
  await Promise.all(
    Array.from({ length: AUTHORITIES }, async (_, i) => {
      const nickname = `auth${i}`;
      const dd = join(dir, 'routers', nickname);
      await rm(dd, { recursive: true, force: true });
      await mkdir(join(dd, 'keys'), { recursive: true, mode: 0o700 });
      const k = join(dd, 'keys');
      await runFile(
        gencertPath,
        ['--create-identity-key', '--passphrase-fd', '0', '-i', join(k, 'authority_identity_key'), '-s', join(k, 'authority_signing_key'), '-c', join(k, 'authority_certificate'), '-m', '12', '-a', `127.0.0.1:${basePort + 50 + i}`],
        'onionpost-testnet\n',
      );
      const cert = await readFile(join(k, 'authority_certificate'), 'utf8');
      const v3ident = /^fingerprint ([0-9A-F]{40})$/m.exec(cert)?.[1];
      const expires = /^dir-key-expires (\S+ \S+)$/m.exec(cert)?.[1];
      if (!v3ident || !expires) throw new TorError('TESTNET_FAILED', `unreadable authority certificate for ${nickname}`);
      out.authorities[i] = { nickname, v3ident, fingerprint: await fingerprint(tor, dd), expires: expires.replace(' ', 'T') + 'Z' };
    }),
  );
  await Promise.all(
    Array.from({ length: relays }, async (_, i) => {
      const nickname = `relay${i}`;
      const dd = join(dir, 'routers', nickname);
      await rm(dd, { recursive: true, force: true });
      await mkdir(dd, { recursive: true, mode: 0o700 });
      out.relays[i] = { nickname, fingerprint: await fingerprint(tor, dd) };
    }),
  );
  await writeFile(cachePath, JSON.stringify(out, null, 2) + '\n');
  log(`generated router keys in ${Date.now() - started} ms`);
  return out;
}

async function findGencert(besideTor: string): Promise<string> {
  for (const p of [besideTor, '/usr/bin/tor-gencert', '/usr/local/bin/tor-gencert']) {
    try {
      await access(p, fsc.X_OK);
      return p;
    } catch {
      // not here; try the next location
    }
  }
  throw new TorError('TOR_NOT_FOUND', 'tor-gencert not found; install it: sudo apt-get install tor');
}

/** Wipes a router's state from a previous run, keeping its keys. */
async function wipeState(dataDir: string): Promise<void> {
  const entries = await readdir(dataDir).catch(() => [] as string[]);
  for (const e of entries) if (e !== 'keys') await rm(join(dataDir, e), { recursive: true, force: true });
}

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((res) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: 3000 }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => res({ status: r.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      r.on('error', () => res({ status: 0, body: '' }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => res({ status: 0, body: '' }));
  });
}

/** Routers in a microdesc consensus and their flags. */
export function parseConsensusFlags(body: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  let current: string | null = null;
  for (const line of body.split('\n')) {
    if (line.startsWith('r ')) current = line.split(' ')[1] ?? null;
    else if (line.startsWith('s ') && current) {
      out.set(current, new Set(line.slice(2).trim().split(' ')));
      current = null;
    }
  }
  return out;
}

async function isOurTor(pid: number, dir: string): Promise<boolean> {
  const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  const args = cmd.split('\0');
  return /(^|\/)tor$/.test(args[0] ?? '') && args.some((a) => a.startsWith(dir + '/'));
}

/** Stops the routers recorded in dir/network.json that are still tor processes of this network. */
export async function downTestNetwork(dir: string): Promise<void> {
  const abs = resolve(dir);
  const file = await readFile(join(abs, 'network.json'), 'utf8').then((t) => JSON.parse(t) as NetworkFile, () => null);
  if (!file) return;
  await stopPids(file.pids, abs);
}

async function stopPids(pids: readonly number[], dir: string): Promise<void> {
  const ours = [];
  for (const pid of pids) if (await isOurTor(pid, dir)) ours.push(pid);
  for (const pid of ours) signalPid(pid, 'SIGTERM');
  const until = Date.now() + 3000;
  for (;;) {
    const alive = [];
    for (const pid of ours) if (await isOurTor(pid, dir)) alive.push(pid);
    if (alive.length === 0) return;
    if (Date.now() > until) {
      for (const pid of alive) signalPid(pid, 'SIGKILL');
      await sleep(100);
      if (Date.now() > until + 2000) return;
    }
    await sleep(50);
  }
}

function signalPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** The joining information of a network started in dir (by this or another process). */
export async function readTestNetwork(dir: string): Promise<TestNetworkInfo> {
  const abs = resolve(dir);
  let file: NetworkFile;
  try {
    file = JSON.parse(await readFile(join(abs, 'network.json'), 'utf8')) as NetworkFile;
  } catch (err) {
    throw new TorError('TESTNET_FAILED', `no test network in ${abs} (network.json missing or unreadable)`, { cause: err });
  }
  if (!file.ready) throw new TorError('TESTNET_FAILED', `the test network in ${abs} is not ready`);
  return { dirAuthorities: file.dirAuthorities };
}

/** Starts the network and resolves when it is ready for node tors. Kills what it started on failure. */
export async function upTestNetwork(opts: UpTestNetworkOptions): Promise<TestNetwork> {
  const dir = resolve(opts.dir);
  const relays = opts.relays ?? 2;
  if (relays < 2) throw new TorError('BAD_ARGUMENT', 'a test network needs at least 2 relays (5 routers)');
  const log = opts.log ?? (() => {});
  const consensusTimeoutMs = opts.consensusTimeoutMs ?? 60_000;
  const tor = await findTor(opts.torPath ? { torPath: opts.torPath } : {});
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // A network still running from this dir would keep its ports and be orphaned by a new network.json.
  await downTestNetwork(dir);
  const routersTotal = AUTHORITIES + relays;
  const previous = await readFile(join(dir, 'keys.json'), 'utf8').then((t) => (JSON.parse(t) as KeyCache).basePort, () => undefined);
  const basePort = opts.basePort ?? (await choosePorts(routersTotal, previous));
  const t0 = Date.now();
  const keys = await ensureKeys(tor, dir, basePort, relays, log);
  checkAbort(opts.signal);

  const dirAuthorities = keys.authorities.map(
    (a, i) => `${a.nickname} orport=${basePort + i} no-v2 v3ident=${a.v3ident} 127.0.0.1:${basePort + 50 + i} ${a.fingerprint}`,
  );
  const common = readTemplate('testnet/common.torrc', opts.templatesDir);
  const roleTpl = { authority: readTemplate('testnet/authority.torrc', opts.templatesDir), relay: readTemplate('testnet/relay.torrc', opts.templatesDir) };
  const file: NetworkFile = {
    version: 1, dir, basePort, dirAuthorities, pids: [], routers: [], ownerPid: opts.ownerPid ?? null, startedAt: new Date().toISOString(), ready: false,
  };
  const children: ChildProcess[] = [];
  const save = () => writeFile(join(dir, 'network.json'), JSON.stringify(file, null, 2) + '\n');
  let failure: Error | null = null;

  const startRouter = async (nickname: string, role: 'authority' | 'relay', i: number) => {
    const dataDir = join(dir, 'routers', nickname);
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    await wipeState(dataDir);
    const vars = {
      dataDir, nickname, logFile: join(dataDir, 'notice.log'), ownerPid: opts.ownerPid ?? null, dirAuthorities,
      orPort: basePort + i, dirPort: role === 'authority' ? basePort + 50 + i : null,
    };
    const torrc = join(dataDir, 'torrc');
    await writeFile(torrc, renderTorrc(common, vars) + renderTorrc(roleTpl[role], vars));
    const out = openSync(join(dataDir, 'stdout.log'), 'a');
    const detached = opts.ownerPid === undefined;
    const child = spawn(tor, ['-f', torrc, '--defaults-torrc', join(dataDir, 'no-defaults')], { stdio: ['ignore', out, out], detached });
    closeSync(out);
    if (detached) child.unref();
    children.push(child);
    child.once('exit', (code, sig) => {
      failure ??= new TorError('TESTNET_FAILED', `router ${nickname} exited (code ${code}, signal ${sig}); see ${join(dataDir, 'notice.log')}`);
    });
    child.once('error', (err) => {
      failure ??= new TorError('TESTNET_FAILED', `cannot start router ${nickname}: ${err.message}`, { cause: err });
    });
    if (child.pid === undefined) throw new TorError('TESTNET_FAILED', `cannot start router ${nickname}`);
    file.pids.push(child.pid);
    const r: RouterFile = { nickname, role, pid: child.pid, orPort: basePort + i, dataDir };
    if (role === 'authority') r.dirPort = basePort + 50 + i;
    file.routers.push(r);
    await save();
  };

  const waitFor = async (what: string, ok: () => Promise<boolean>) => {
    const until = Date.now() + consensusTimeoutMs;
    for (;;) {
      if (failure) throw failure;
      checkAbort(opts.signal);
      if (await ok()) return;
      if (Date.now() > until) throw new TorError('TESTNET_FAILED', `${what} not reached within ${consensusTimeoutMs} ms`);
      await sleep(500);
    }
  };
  const consensuses = () => Promise.all(keys.authorities.map((_, i) => httpGet(basePort + 50 + i, '/tor/status-vote/current/consensus-microdesc')));

  try {
    for (let i = 0; i < AUTHORITIES; i++) await startRouter(`auth${i}`, 'authority', i);
    log(`started 3 authorities on ports ${basePort}+`);
    await waitFor('first consensus', async () => (await consensuses()).every((c) => c.status === 200));
    log(`first consensus after ${Date.now() - t0} ms`);
    for (let i = 0; i < relays; i++) await startRouter(`relay${i}`, 'relay', AUTHORITIES + i);
    const nicks = [...keys.authorities.map((a) => a.nickname), ...keys.relays.map((r) => r.nickname)];
    await waitFor('consensus with HSDir+Stable+Fast on every router', async () =>
      (await consensuses()).every((c) => {
        if (c.status !== 200) return false;
        const flags = parseConsensusFlags(c.body);
        return nicks.every((n) => ['HSDir', 'Stable', 'Fast', 'Running', 'Valid'].every((f) => flags.get(n)?.has(f)));
      }),
    );
    log(`full consensus after ${Date.now() - t0} ms; settling ${opts.settleMs ?? 12_000} ms`);
    const settleUntil = Date.now() + (opts.settleMs ?? 12_000);
    while (Date.now() < settleUntil) {
      if (failure) throw failure;
      checkAbort(opts.signal);
      await sleep(Math.min(250, Math.max(0, settleUntil - Date.now())));
    }
    file.ready = true;
    await save();
    log(`test network ready in ${Date.now() - t0} ms (${dir})`);
  } catch (err) {
    await stopPids(file.pids, dir);
    throw err;
  }

  let downPromise: Promise<void> | null = null;
  return {
    dir,
    info: { dirAuthorities },
    down: () => {
      downPromise ??= (async () => {
        for (const c of children) c.removeAllListeners('exit');
        await stopPids(file.pids, dir);
      })();
      return downPromise;
    },
  };
}
