/**
 * How fast a CLI call that only asks a running node something answers: `onionpost status --json`
 * against a running node, each run a fresh process as a user or a script starts it, against a bare
 * `node -e 0` in the same run (the floor any Node CLI pays).
 *
 *   npm run bench -- cli [--runs 15] [--bin PATH]
 *
 * `--bin` times another build's bin/onionpost.js (an older checkout, to compare) against the node
 * this one starts.
 *
 * The node is `onionpost start --loopback` in a process of its own (no tor: its bootstrap is not
 * what is measured). The two commands alternate, so load on the machine hits both alike. Reported:
 * median and p90 wall time of each, and the ratio of the medians. Target (issue 14): well under a
 * second.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { numArg } from './args.js';
import { runCli, spawnCli, stop } from './memory.js';
import { machineLabel, percentile, report, round } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const BIN = join(here, '../../bin/onionpost.js');
const progress = (s: string) => process.stderr.write(`[bench cli] ${s}\n`);

/** Wall time of one process run to its exit, ms; rejects on a non-zero exit. */
function timed(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.once('exit', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${args.join(' ')} failed (${code}): ${err}`))));
  });
}

export async function run(args: string[]): Promise<void> {
  const runs = Math.max(3, numArg(args, 'runs', 15));
  const bin = args.includes('--bin') ? args[args.indexOf('--bin') + 1]! : BIN;
  const root = mkdtempSync(join(tmpdir(), 'onionpost-bench-cli-'));
  const env: NodeJS.ProcessEnv = { ...process.env, ONIONPOST_PASSPHRASE: 'bench cli passphrase', ONIONPOST_HOME: join(root, 'home'), ONIONPOST_DEBUG: '' };
  const dataDir = join(root, 'node');
  let node: Awaited<ReturnType<typeof spawnCli>>['child'] | undefined;
  try {
    await runCli(['init', '--data-dir', dataDir, '--kdf', 'fast'], env);
    node = (await spawnCli(['start', '--data-dir', dataDir, '--loopback', join(root, 'loopback'), '--no-bridge', '--log-level', 'warn'], env, /onionpost node running/, 60_000)).child;
    const status = [bin, 'status', '--json', '--data-dir', dataDir];
    await timed(status, env); // warm the file cache for both
    await timed(['-e', '0'], env);
    const cli: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < runs; i++) {
      cli.push(await timed(status, env));
      bare.push(await timed(['-e', '0'], env));
    }
    progress(`${runs} runs each`);
    const med = (xs: number[]) => percentile(xs, 50);
    const ratio = med(cli) / med(bare);
    report([
      `machine: ${machineLabel()}`,
      `onionpost status --json against a running node: median ${round(med(cli), 0)} ms, p90 ${round(percentile(cli, 90), 0)} ms (${runs} runs)`,
      `node -e 0:                                    median ${round(med(bare), 0)} ms, p90 ${round(percentile(bare, 90), 0)} ms`,
      `ratio of the medians: ${round(ratio, 2)}× (target: the call well under a second)`,
    ], {
      bench: 'cli', machine: machineLabel(), runs,
      status_median_ms: round(med(cli), 0), status_p90_ms: round(percentile(cli, 90), 0),
      node_e0_median_ms: round(med(bare), 0), node_e0_p90_ms: round(percentile(bare, 90), 0),
      ratio: round(ratio, 2), target_ms: 1000, target_met: med(cli) < 1000,
    });
  } finally {
    await stop(node);
    rmSync(root, { recursive: true, force: true });
  }
}
