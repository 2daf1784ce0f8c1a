#!/usr/bin/env node
// The CLI lives in TypeScript; `npm run build` (or any `npm start` / `npm test`) compiles it to dist/.
import('../dist/src/cli/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/cli')) {
    console.error('onionpost: not built yet. Run `npm run build` (or `node scripts/setup.mjs`) first.');
    process.exit(1);
  }
  throw err;
});
