#!/usr/bin/env node
'use strict';
// Regenerates the README's configuration table from src/config/variables.ts (run after `npm run build`).
const fs = require('node:fs');
const path = require('node:path');
const { configTableMarkdown } = require('../dist/config/markdown');
const file = path.join(__dirname, '..', 'README.md');
const readme = fs.readFileSync(file, 'utf8');
const start = '<!-- config-table:start -->';
const end = '<!-- config-table:end -->';
const a = readme.indexOf(start);
const b = readme.indexOf(end);
if (a < 0 || b < a) throw new Error('README.md has no config-table markers');
fs.writeFileSync(file, `${readme.slice(0, a + start.length)}\n${configTableMarkdown()}\n${readme.slice(b)}`);
