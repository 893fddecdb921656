#!/usr/bin/env node
'use strict';
// The CLI is compiled TypeScript; `npm ci` builds it through the `prepare` script.
const path = require('node:path');
const fs = require('node:fs');
const entry = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
if (!fs.existsSync(entry)) {
  process.stderr.write('fleet: dist/ is missing; run `npm run build` (npm ci does this for you)\n');
  process.exit(1);
}
// snowflake-sdk pulls in the AWS SDK, which warns on every start that its 2027 releases need Node 22.
// The fleet pins versions that run on Node 20; keep every other warning.
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (w && (w.name === 'NodeVersionSupportWarning' || String(w.message).includes('NodeVersionSupportWarning'))) return;
  process.stderr.write(`${w && w.stack ? w.stack : w}\n`);
});
require(entry);
