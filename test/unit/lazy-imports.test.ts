/**
 * What loads what (issue 15 "Idle memory", issue 14 "a CLI call … in well under a second"). tronweb
 * with ethers and axios, the EVM dev chain, solc and mailparser cost tens of MB and seconds of start;
 * they must be imported where they are used, not by a running node or by a CLI call that only asks
 * the node something. `npm run bench -- memory` and `-- cli` give the figures.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const probe = fileURLToPath(new URL('../fixtures/import-probe.js', import.meta.url));

function packagesLoadedBy(...modules: string[]): string[] {
  const r = spawnSync(process.execPath, [probe, ...modules], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stderr.split('\n').filter((l) => l.startsWith('PACKAGE ')).map((l) => l.slice(8)).sort();
}

const HEAVY = ['tronweb', 'ethers', 'axios', '@ethereumjs/evm', '@ethereumjs/statemanager', 'solc', 'mailparser', 'pino-pretty', 'playwright-core'];

test('a running node (start, with its registry and mail bridge) loads none of the heavy packages', () => {
  const loaded = packagesLoadedBy('cli/start.js', 'node/index.js', 'registry/index.js', 'contract/index.js', 'bridge/index.js', 'cli/registry-config.js');
  assert.deepEqual(loaded.filter((p) => HEAVY.includes(p)), []);
});

test('the CLI entry loads yargs and nothing else of weight until a command needs it', () => {
  const loaded = packagesLoadedBy('cli/main.js', 'api/index.js');
  assert.deepEqual(loaded.filter((p) => !['yargs', 'yargs-parser', 'cliui', 'escalade', 'y18n', 'string-width', 'strip-ansi', 'ansi-regex', 'wrap-ansi', 'emoji-regex', 'is-fullwidth-code-point', 'ansi-styles', 'get-caller-file', 'require-directory'].includes(p)), []);
});
