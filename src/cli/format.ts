/** Human-readable output for the CLI; `--json` bypasses all of this. */
export function when(ms: number | undefined | null): string {
  if (!ms) return '-';
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

export function short(s: string | undefined | null, n: number): string {
  if (!s) return '';
  const one = s.replace(/\s+/g, ' ');
  return one.length > n ? `${one.slice(0, n - 1)}…` : one;
}

export function shortOnion(onion: string | undefined | null): string {
  if (!onion) return '-';
  return onion.length > 20 ? `${onion.slice(0, 12)}…${onion.slice(-12)}` : onion;
}

/** Left-aligned columns, header underlined. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
