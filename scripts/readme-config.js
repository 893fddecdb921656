#!/usr/bin/env node

// Regenerates the configuration table in docs/configuration.md from src/config/variables.ts (run after
// `npm run build`; `npm run docs:config` does both). Only the text between the markers is replaced.
const fs = require('node:fs');
const path = require('node:path');
const { configTableMarkdown } = require('../dist/config/markdown');
const file = path.join(__dirname, '..', 'docs', 'configuration.md');
const doc = fs.readFileSync(file, 'utf8');
const start = '<!-- config-table:start -->';
const end = '<!-- config-table:end -->';
const a = doc.indexOf(start);
const b = doc.indexOf(end);
if (a < 0 || b < a) throw new Error('docs/configuration.md has no config-table markers');
fs.writeFileSync(file, `${doc.slice(0, a + start.length)}\n${configTableMarkdown()}\n${doc.slice(b)}`);
