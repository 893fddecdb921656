import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * How a module is referred to:
 * - `static`: a top-level `import … from` / `import '…'` / `export … from` that tsc keeps (loaded with the file);
 * - `type`: `import type`, `import { type A, type B }`, `typeof import('…')` (erased by tsc);
 * - `lazy`: `require('…')` or `import('…')` in code (loaded when that code runs).
 */
type ImportKind = 'static' | 'type' | 'lazy';

export interface ImportRef {
  specifier: string;
  kind: ImportKind;
}

/** Every `.ts` file under `dir`. */
export function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The modules a TypeScript source refers to, by a scan of its text (the project's style: one statement per import). */
export function importsOf(code: string): ImportRef[] {
  const out: ImportRef[] = [];
  const typeOnly = (clause: string) => /^type\b/.test(clause) || /^\{\s*(type\s+\w+(\s+as\s+\w+)?\s*,?\s*)+\}$/.test(clause.trim());
  for (const m of code.matchAll(/^import\s+([^'";]*?)\s+from\s+'([^']+)'/gm)) out.push({ specifier: m[2], kind: typeOnly(m[1]) ? 'type' : 'static' });
  for (const m of code.matchAll(/^import\s+'([^']+)'/gm)) out.push({ specifier: m[1], kind: 'static' });
  for (const m of code.matchAll(/^export\s+(type\s+)?(\*|\*\s+as\s+\w+|\{[^}]*\})\s+from\s+'([^']+)'/gm)) {
    out.push({ specifier: m[3], kind: m[1] || typeOnly(m[2]) ? 'type' : 'static' });
  }
  for (const m of code.matchAll(/\brequire\('([^']+)'\)/g)) out.push({ specifier: m[1], kind: 'lazy' });
  for (const m of code.matchAll(/(typeof\s+)?\bimport\('([^']+)'\)/g)) out.push({ specifier: m[2], kind: m[1] ? 'type' : 'lazy' });
  return out;
}

/** The package a bare specifier names (`@scope/name` or `name`), or undefined for relative paths and builtins. */
export function packageName(specifier: string, builtins: ReadonlySet<string>): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('node:') || builtins.has(specifier.split('/')[0])) return undefined;
  return specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0];
}
