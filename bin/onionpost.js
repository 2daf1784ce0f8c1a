#!/usr/bin/env node
// The CLI lives in TypeScript; `npm run build` (or any `npm start` / `npm test`) compiles it to dist/.
// Importing the module runs nothing; main(argv) runs the command and sets process.exitCode.
import('../dist/src/cli/main.js').then(
  (cli) => cli.main(process.argv.slice(2)),
  (err) => {
    if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/cli')) {
      console.error('onionpost: not built yet. Run `npm run build` (or `node scripts/setup.mjs`) first.');
      process.exit(1);
    }
    throw err;
  },
);
