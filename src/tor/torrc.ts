/**
 * torrc templates (data in the repository's `tor/` directory) and their rendering. No I/O except
 * `readTemplate`.
 *
 * Template syntax, one torrc line per line:
 *   `{{name}}`       replaced by vars[name] (a string or number);
 *   array value      the line is repeated once per element (one array placeholder per line);
 *   null/undefined   the line is left out (an optional option);
 *   `## …` lines     template documentation, dropped; `# …` comments and blank lines are kept.
 * A placeholder missing from `vars` altogether, or a value containing a line break or '#', throws.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TorError } from './errors.js';

export type TorrcVars = Record<string, string | number | readonly string[] | null | undefined>;

const PLACEHOLDER = /\{\{([A-Za-z0-9_]+)\}\}/g;

export function renderTorrc(template: string, vars: TorrcVars): string {
  const out: string[] = [];
  for (const line of template.split('\n')) {
    if (line.startsWith('##')) continue;
    const names = [...line.matchAll(PLACEHOLDER)].map((m) => m[1]!);
    if (names.length === 0) {
      out.push(line);
      continue;
    }
    let rows: string[] = [line];
    let dropped = false;
    for (const name of names) {
      if (!(name in vars)) throw new TorError('BAD_ARGUMENT', `torrc template needs {{${name}}}`);
      const v = vars[name];
      if (v === null || v === undefined) {
        dropped = true;
        break;
      }
      const values = Array.isArray(v) ? (v as readonly string[]) : [String(v)];
      for (const one of values) checkValue(name, one);
      rows = rows.flatMap((r) => values.map((one) => r.replace(`{{${name}}}`, one)));
    }
    if (!dropped) out.push(...rows);
  }
  return out.join('\n').replace(/\n*$/, '\n');
}

function checkValue(name: string, v: string): void {
  if (/[\r\n\0#]/.test(v)) throw new TorError('BAD_ARGUMENT', `torrc value for ${name} contains a line break, NUL or '#'`);
}

/** Checks extra torrc lines given by a caller (one option per line). */
export function checkTorrcLines(lines: readonly string[]): void {
  for (const l of lines) if (/[\r\n\0]/.test(l)) throw new TorError('BAD_ARGUMENT', 'an extra torrc line contains a line break or NUL');
}

/**
 * The repository's `tor/` directory: found by walking up from this module (it runs from src/ or
 * from dist/src/), unless `override` is given.
 */
export function templatesDir(override?: string): string {
  if (override) return override;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'tor', 'node.torrc'))) return join(dir, 'tor');
    dir = dirname(dir);
  }
  throw new TorError('BAD_ARGUMENT', 'cannot find the tor/ templates directory above ' + dirname(fileURLToPath(import.meta.url)));
}

/** Reads one template, e.g. `node.torrc` or `testnet/authority.torrc`. */
export function readTemplate(name: string, override?: string): string {
  return readFileSync(join(templatesDir(override), name), 'utf8');
}
