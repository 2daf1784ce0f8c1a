/**
 * The test command. Runs the tiers in order of cost (unit, component, sim, adversarial, tor, browser) under node's own
 * test runner, after setting up the fixtures the selected tiers share (the private Tor network).
 *
 *   node dist/test/run.js                 every tier (what CI runs)
 *   node dist/test/run.js --tier unit     one tier (comma-separated for several)
 *   node dist/test/run.js --grep outbox   only files whose name contains a word
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setupGlobal, type Tier } from './fixtures/global.js';

const ALL_TIERS: readonly Tier[] = ['unit', 'component', 'sim', 'adversarial', 'tor', 'browser'];
const here = dirname(fileURLToPath(import.meta.url));

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function findTests(dir: string): string[] {
  let out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries.sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(findTests(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

async function main(): Promise<number> {
  const tierArg = arg('--tier');
  const tiers = tierArg ? (tierArg.split(',') as Tier[]) : ALL_TIERS;
  for (const t of tiers) if (!ALL_TIERS.includes(t)) throw new Error(`unknown tier ${t}; tiers: ${ALL_TIERS.join(', ')}`);
  const grep = arg('--grep');
  const files = tiers.flatMap((t) => findTests(join(here, t))).filter((f) => !grep || f.includes(grep));
  if (files.length === 0) {
    console.error('no test files selected');
    return 1;
  }
  const log = (line: string) => console.error(`[test] ${line}`);
  const usedTiers = tiers.filter((t) => files.some((f) => f.startsWith(join(here, t))));
  const fixtures = await setupGlobal(usedTiers, log);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void fixtures.teardown().finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    log(`running ${files.length} files: ${files.map((f) => relative(here, f)).join(' ')}`);
    const code = await new Promise<number>((resolve) => {
      // A hung test fails after 5 minutes instead of stalling CI (tests that need longer say so);
      // --test-force-exit keeps a leaked handle from holding the run open after the last test.
      const child = spawn(process.execPath, ['--test', '--test-reporter=spec', '--test-timeout=300000', '--test-force-exit', ...files], {
        stdio: 'inherit',
        env: { ...process.env, ...fixtures.env },
      });
      child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0)));
    });
    return code;
  } finally {
    await fixtures.teardown();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exit(1);
  },
);
