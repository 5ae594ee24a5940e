#!/usr/bin/env node
'use strict';
// The CLI is TypeScript compiled into dist/ (npm install runs the build via `prepare`).
let cli;
try {
  cli = require('../dist/cli/main.js');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    process.stderr.write('pgbpm: dist/cli/main.js is missing; build first: npm run build\n');
    process.exit(1);
  }
  throw err;
}
cli.run(process.argv.slice(2));
