#!/usr/bin/env node

// `npx local-snowflake --port 8085`: the compiled CLI in dist/ (`npm run build`; a published package ships it).
const path = require('node:path');
const fs = require('node:fs');
const entry = path.join(__dirname, '..', 'dist', 'cli.js');
if (!fs.existsSync(entry)) {
  process.stderr.write('local-snowflake: dist/ is missing; run `npm run build` in the package first\n');
  process.exit(1);
}
const { version } = require('../package.json');
require(entry)
  .main(process.argv.slice(2), version)
  .then(
    (code) => {
      if (code !== undefined) process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`local-snowflake: ${err?.stack ? err.stack : err}\n`);
      process.exit(1);
    },
  );
