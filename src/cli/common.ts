/**
 * What every CLI command module shares: the global options and how results are printed. Commands
 * import this module, never main.ts (which imports them), so there is no import cycle.
 */

/** Options every command takes (see buildCli in main.ts). */
export interface GlobalArgs {
  dataDir: string;
  json: boolean;
  logLevel: string;
}

/** Prints `value` as JSON with --json, else the human rendering. */
export function print(args: { json: boolean }, value: unknown, human: () => string): void {
  process.stdout.write(args.json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
}
