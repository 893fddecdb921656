import { VARIABLES, type VariableSpec } from './variables';

/** The configuration table (docs/configuration.md), generated from the variable list (`fleet config --markdown`). */
export function configTableMarkdown(): string {
  const rows = (Object.entries(VARIABLES) as [string, VariableSpec][]).map(
    ([name, spec]) =>
      `| \`${name}\` | ${spec.group} | ${spec.default === undefined ? '—' : spec.default === '' ? '(empty)' : `\`${spec.default}\``} | ${spec.secret ? 'secret. ' : ''}${spec.description.replace(/\|/g, '\\|')} |`,
  );
  return ['| variable | group | default | what it does |', '|---|---|---|---|', ...rows].join('\n');
}
