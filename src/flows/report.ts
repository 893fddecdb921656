import type { CallAnalysis, CollectorResult, DealAnalysis, Source, SourceItem, WorkflowJobData, WorkflowReport } from '../contracts/workflows';
import { SOURCES } from '../contracts/workflows';

/** What a child job handed up: a collector's items or an analyser's analysis, tagged with its source. */
export type ChildValue = (CollectorResult & { kind?: undefined }) | ((DealAnalysis | CallAnalysis) & { source: Source; missing?: string });

const money = (n: number | null) => (n === null ? '—' : `$${Math.round(n).toLocaleString('en-US')}`);
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\s+/g, ' ').trim();

/**
 * Combines what the children returned into the report. `failures` are the children that failed after
 * their retries and were ignored (optional sources): they are listed as gaps, never silently dropped.
 */
export function synthesizeReport(
  data: WorkflowJobData & { asOf: string },
  values: ChildValue[],
  failures: { source: Source; reason: string }[],
): WorkflowReport {
  const bySource = new Map<Source, ChildValue[]>();
  for (const v of values) bySource.set(v.source, [...(bySource.get(v.source) ?? []), v]);
  const deals = values.find((v): v is DealAnalysis & { source: Source; missing?: string } => v.kind === 'deals');
  const calls = values.find((v): v is CallAnalysis & { source: Source; missing?: string } => v.kind === 'calls');
  const slack = values.find((v): v is CollectorResult => v.source === 'slack' && !v.kind)?.items;
  const linear = values.find((v): v is CollectorResult => v.source === 'linear' && !v.kind)?.items;

  const missing = new Map<Source, string>();
  for (const f of failures) missing.set(f.source, f.reason);
  if (deals?.missing) missing.set('hubspot', deals.missing);
  if (calls?.missing) missing.set('gong', calls.missing);
  for (const s of SOURCES) if (!bySource.has(s) && !missing.has(s)) missing.set(s, 'no result');
  const sourcesMissing = [...missing].map(([source, reason]) => ({ source, reason }));
  const sourcesUsed = SOURCES.filter((s) => !missing.has(s));

  const report: Omit<WorkflowReport, 'markdown'> = {
    question: data.question,
    type: data.type,
    asOf: data.asOf,
    sourcesUsed,
    sourcesMissing,
    ...(deals && !deals.missing
      ? {
          deals: {
            kind: 'deals',
            deals: deals.deals,
            atRisk: deals.atRisk,
            totalAmountAtRisk: deals.totalAmountAtRisk,
            medianDaysInStage: deals.medianDaysInStage,
          },
        }
      : {}),
    ...(calls && !calls.missing
      ? { calls: { kind: 'calls', calls: calls.calls, averageSentiment: calls.averageSentiment, negativeCalls: calls.negativeCalls, themes: calls.themes } }
      : {}),
    ...(slack ? { slack } : {}),
    ...(linear ? { linear } : {}),
  };
  return { ...report, markdown: renderMarkdown(report) };
}

function items(title: string, list: SourceItem[] | undefined, n = 5): string[] {
  if (!list) return [];
  if (!list.length) return [`## ${title}`, '', '_Nothing matched._', ''];
  return [
    `## ${title}`,
    '',
    ...list.slice(0, n).map((i) => `- **${cell(i.title)}**${i.dealId ? ` (deal ${i.dealId})` : ''}: ${cell(i.text).slice(0, 160)}`),
    '',
  ];
}

/** A readable Markdown rendering of the report. */
function renderMarkdown(r: Omit<WorkflowReport, 'markdown'>): string {
  const lines = [
    `# ${cell(r.question)}`,
    '',
    `_As of ${r.asOf.slice(0, 10)} · workflow type \`${r.type}\` · sources: ${r.sourcesUsed.join(', ') || 'none'}_`,
    '',
  ];
  if (r.sourcesMissing.length) {
    lines.push(`> **Partial report.** Missing: ${r.sourcesMissing.map((m) => `${m.source} (${cell(m.reason).slice(0, 120)})`).join('; ')}.`, '');
  }
  if (r.deals) {
    const d = r.deals;
    lines.push(
      '## Deals at risk',
      '',
      `${d.atRisk} of ${d.deals.length} open deals are at risk, ${money(d.totalAmountAtRisk)} in total; median ${d.medianDaysInStage ?? '—'} days in stage.`,
      '',
    );
    const top = d.deals.filter((x) => x.risk >= 0.5).slice(0, 10);
    if (top.length) {
      lines.push('| deal | company | stage | amount | risk | why |', '|---|---|---|---:|---:|---|');
      for (const x of top)
        lines.push(
          `| ${x.id} ${cell(x.name)} | ${cell(x.company ?? '—')} | ${cell(x.stage)} | ${money(x.amount)} | ${x.risk.toFixed(2)} | ${cell(x.reasons.join('; '))} |`,
        );
      lines.push('');
    }
  }
  if (r.calls) {
    const c = r.calls;
    lines.push('## Calls', '', `${c.calls.length} calls, average sentiment ${c.averageSentiment ?? '—'}, ${c.negativeCalls} negative.`, '');
    if (c.themes.length) lines.push(`Themes: ${c.themes.map((t) => `${t.theme} (${t.count})`).join(', ')}.`, '');
    for (const call of [...c.calls].sort((a, b) => a.sentiment - b.sentiment).slice(0, 5)) {
      lines.push(
        `- ${cell(call.title)}${call.dealId ? ` (deal ${call.dealId})` : ''}: sentiment ${call.sentiment.toFixed(2)} — ${cell(call.summary).slice(0, 160)}`,
      );
    }
    if (c.calls.length) lines.push('');
  }
  lines.push(...items('Slack', r.slack), ...items('Linear issues', r.linear));
  lines.push(
    '## Sources',
    '',
    ...r.sourcesUsed.map((s) => `- ${s}: used`),
    ...r.sourcesMissing.map((m) => `- ${m.source}: **missing** — ${cell(m.reason)}`),
    '',
  );
  lines.push('_Sentiment and summaries come from the warehouse (Cortex SENTIMENT/SUMMARIZE; deterministic stand-ins on the local warehouse)._');
  return lines.join('\n');
}
