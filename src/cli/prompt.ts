/** Passphrases: from a file, the environment, or a TTY prompt with echo off. Never from argv. */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { OnionpostError } from '../errors.js';

export class CliError extends OnionpostError {}

export async function readPassphrase(opts: { passphraseFile?: string; confirm?: boolean; env?: NodeJS.ProcessEnv }): Promise<string> {
  const env = opts.env ?? process.env;
  if (opts.passphraseFile) {
    try {
      return readFileSync(opts.passphraseFile, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new CliError('PASSPHRASE_FILE', `cannot read passphrase file ${opts.passphraseFile}`, { cause: err });
    }
  }
  if (env.ONIONPOST_PASSPHRASE !== undefined) return env.ONIONPOST_PASSPHRASE;
  if (!process.stdin.isTTY) {
    throw new CliError('NO_PASSPHRASE', 'no passphrase: use --passphrase-file FILE, set ONIONPOST_PASSPHRASE, or run in a terminal');
  }
  const first = await promptHidden('Passphrase: ');
  if (opts.confirm) {
    const again = await promptHidden('Repeat passphrase: ');
    if (again !== first) throw new CliError('PASSPHRASE_MISMATCH', 'the passphrases do not match');
  }
  return first;
}

function promptHidden(question: string): Promise<string> {
  let muted = false;
  const out = new Writable({
    write(chunk, _enc, cb) {
      if (!muted) process.stderr.write(chunk);
      cb();
    },
  });
  const rl = createInterface({ input: process.stdin, output: out, terminal: true });
  return new Promise((resolve) => {
    rl.question(question, (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
    muted = true;
  });
}
