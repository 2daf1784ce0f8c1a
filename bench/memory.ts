/**
 * Memory of a node as a user runs it: `onionpost start` in a process of its own, configured like a
 * real user's node (a TRON registry, the mail bridge on, the default passphrase KDF), without Tor
 * (`--loopback`, so tor's own memory and its bootstrap are not in the figures).
 *
 *   npm run bench -- memory [--n 1000] [--idle 5] [--kdf default|fast]
 *
 *   1. a local TRON dev chain (`onionpost chain`) with the contracts deployed (`onionpost deploy`):
 *      the registry the node is configured with; the chain's own process is not measured;
 *   2. `onionpost init`, then `onionpost start --loopback DIR --network dev --full-host URL`;
 *      when it says it runs, `--idle` seconds pass; then its RSS (/proc/<pid>/status VmRSS);
 *   3. a sender node in this process (real SQLite, ws on 127.0.0.1) sends it `--n` mails (1 KiB
 *      bodies); once every one is delivered and `--idle` seconds have passed, its RSS again, and its
 *      peak (VmHWM) over the whole run;
 *   4. baseline, same run: the RSS of a bare `node` process that only waits.
 *
 * Target (issue 15): idle ≤ 80 MB. The JSON last line has "bench":"memory", idle_rss_mb,
 * after_<n>_rss_mb, peak_rss_mb, baseline_rss_mb and their ratios to the baseline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cryptoReady, generateIdentity } from '../src/crypto/index.js';
import { silentLogger } from '../src/log.js';
import { OnionpostNode, loopbackNetwork } from '../src/node/index.js';
import { numArg } from './args.js';
import { machineLabel, report, round } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const BIN = join(here, '../../bin/onionpost.js');
const progress = (s: string) => process.stderr.write(`[bench memory] ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resident and peak resident set of a process, MB (from /proc). */
export function rssOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

/** Spawns the CLI; resolves once a stdout line matches `ready` (with all stdout so far). */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv, ready: RegExp, timeoutMs: number): Promise<{ child: ChildProcess; out: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`onionpost ${args[0]} not ready in ${timeoutMs / 1000} s: ${out} ${err}`)), timeoutMs);
    child.stderr!.on('data', (d) => (err = (err + d).slice(-4000)));
    child.stdout!.on('data', (d) => {
      out += d;
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve({ child, out });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`onionpost ${args[0]} exited (${code}): ${err}`));
    });
  });
}

/** Runs the CLI to completion; resolves with stdout (rejects on a non-zero exit). */
export function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`onionpost ${args.join(' ')} failed (${code}): ${err}`))));
  });
}

export async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(t);
}

/** A local dev chain with the contracts deployed, recorded in `env`'s deployments file. */
export async function devRegistry(env: NodeJS.ProcessEnv): Promise<{ chain: ChildProcess; url: string }> {
  const { child: chain, out } = await spawnCli(['chain', '--port', '0', '--json'], env, /\}\s*$/, 60_000);
  const url = (JSON.parse(out) as { url: string }).url;
  await runCli(['deploy', '--network', 'dev', '--full-host', url, '--json'], env);
  return { chain, url };
}

export async function run(args: string[]): Promise<void> {
  const n = numArg(args, 'n', 1000);
  const idleMs = numArg(args, 'idle', 5) * 1000;
  const kdf = args.includes('--kdf') ? args[args.indexOf('--kdf') + 1]! : 'default';
  await cryptoReady();
  const root = mkdtempSync(join(tmpdir(), 'onionpost-bench-memory-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env, ONIONPOST_PASSPHRASE: 'bench memory passphrase', ONIONPOST_HOME: join(root, 'home'),
    ONIONPOST_DEPLOYMENTS: join(root, 'deployments.json'), ONIONPOST_DEBUG: '',
  };
  const loopDir = join(root, 'loopback');
  const dataDir = join(root, 'receiver');
  let chain: ChildProcess | undefined;
  let receiver: ChildProcess | undefined;
  let baseline: ChildProcess | undefined;
  let sender: OnionpostNode | undefined;
  try {
    progress('dev chain and registry…');
    const reg = await devRegistry(env);
    chain = reg.chain;

    progress(`init (kdf ${kdf}) and start the receiver…`);
    const made = JSON.parse(await runCli(['init', '--data-dir', dataDir, '--kdf', kdf, '--json'], env)) as { onion: string };
    const started = await spawnCli([
      'start', '--data-dir', dataDir, '--loopback', loopDir, '--network', 'dev', '--full-host', reg.url,
      '--smtp-port', '0', '--imap-port', '0', '--log-level', 'warn',
    ], env, /onionpost node running/, 120_000);
    receiver = started.child;
    await sleep(idleMs);
    const idle = rssOf(receiver.pid!);
    progress(`idle: ${idle.rss.toFixed(1)} MB`);

    progress(`sending ${n} mails to it…`);
    sender = new OnionpostNode({
      identity: generateIdentity(), dbPath: join(root, 'sender.db'), network: loopbackNetwork(loopDir), logger: silentLogger(),
      selfCheckTimeoutMs: 5_000,
    });
    await sender.start();
    const body = 'x'.repeat(1024);
    const t0 = performance.now();
    const results = await Promise.all(Array.from({ length: n }, (_, i) => sender!.send({ to: made.onion, subject: `bench ${i}`, body, wait: true, waitMs: 600_000 })));
    const sendSeconds = (performance.now() - t0) / 1000;
    const delivered = results.filter((r) => r.state === 'delivered').length;
    if (delivered !== n) throw new Error(`only ${delivered} of ${n} delivered`);
    progress(`delivered ${n} in ${sendSeconds.toFixed(1)} s; waiting ${idleMs / 1000} s`);
    await sleep(idleMs);
    const after = rssOf(receiver.pid!);

    baseline = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
    await sleep(1000);
    const base = rssOf(baseline.pid!);

    report([
      `machine: ${machineLabel()}`,
      `node (onionpost start: registry on the dev chain, mail bridge on, no tor), ${idleMs / 1000} s after start: ${round(idle.rss, 1)} MB RSS (target ≤ 80 MB)`,
      `after receiving ${n} mails (1 KiB) and ${idleMs / 1000} s idle: ${round(after.rss, 1)} MB RSS; peak over the run ${round(after.hwm, 1)} MB`,
      `baseline, a bare node process: ${round(base.rss, 1)} MB RSS; idle node = ${round(idle.rss / base.rss, 2)}× it`,
    ], {
      bench: 'memory', machine: machineLabel(), kdf, n,
      idle_rss_mb: round(idle.rss, 1), [`after_${n}_rss_mb`]: round(after.rss, 1), peak_rss_mb: round(after.hwm, 1),
      baseline_rss_mb: round(base.rss, 1), idle_ratio: round(idle.rss / base.rss, 2), after_ratio: round(after.rss / base.rss, 2),
      idle_target_mb: 80, idle_target_met: idle.rss <= 80, receive_seconds: round(sendSeconds, 1),
    });
  } finally {
    baseline?.kill('SIGKILL');
    await sender?.close();
    await stop(receiver);
    await stop(chain);
    rmSync(root, { recursive: true, force: true });
  }
}
