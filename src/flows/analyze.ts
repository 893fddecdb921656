import type { CallAnalysis, DealAnalysis, DealRisk, DealWithFigures, SourceItem } from '../contracts/workflows';

const THEMES: Record<string, RegExp> = {
  pricing: /\b(pric\w*|discount\w*|cost\w*|expensive)\b/i,
  budget: /\bbudget\w*\b/i,
  security: /\b(security|soc ?2|compliance|gdpr)\b/i,
  legal: /\b(legal|contract\w*|redline\w*|procurement)\b/i,
  competition: /\b(competitor\w*|alternative\w*|switch\w*)\b/i,
  timeline: /\b(timeline|delay\w*|postpon\w*|slipp\w*|next quarter)\b/i,
  integration: /\b(integrat\w*|api|migration)\b/i,
  champion: /\b(champion|sponsor|left the company|reorg\w*)\b/i,
};

const median = (xs: number[]) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * Deal risk, explainable: each signal adds to the score and a reason. Stale (no activity 30+ days),
 * stuck (60+ days in stage), slipping (past or within 14 days of close while not in a late stage),
 * negative notes (warehouse sentiment < -0.2). A deal is at risk from 0.5.
 */
export function analyzeDeals(input: DealWithFigures[]): DealAnalysis {
  const deals: DealRisk[] = input
    .filter((d) => d.figures.isOpen)
    .map(({ deal, figures, notesSentiment }) => {
      let risk = 0;
      const reasons: string[] = [];
      if ((figures.lastActivityAgeDays ?? 0) >= 30) {
        risk += 0.3;
        reasons.push(`no activity for ${figures.lastActivityAgeDays} days`);
      }
      if ((figures.daysInStage ?? 0) >= 60) {
        risk += 0.2;
        reasons.push(`${figures.daysInStage} days in stage "${deal.stage}"`);
      }
      const late = /commit|contract|negotiat|closing/i.test(deal.stage);
      if (figures.daysToClose !== null && figures.daysToClose < 0) {
        risk += 0.3;
        reasons.push(`close date passed ${-figures.daysToClose} days ago`);
      } else if (figures.daysToClose !== null && figures.daysToClose <= 14 && !late) {
        risk += 0.2;
        reasons.push(`closes in ${figures.daysToClose} days but still in "${deal.stage}"`);
      }
      if (notesSentiment !== null && notesSentiment < -0.2) {
        risk += 0.3;
        reasons.push(`negative notes (sentiment ${notesSentiment.toFixed(2)})`);
      }
      return {
        id: deal.id,
        name: deal.name,
        company: deal.company,
        stage: deal.stage,
        amount: deal.amount,
        risk: Math.min(1, Number(risk.toFixed(2))),
        reasons,
        daysInStage: figures.daysInStage,
        lastActivityAgeDays: figures.lastActivityAgeDays,
      };
    })
    .sort((a, b) => b.risk - a.risk || (b.amount ?? 0) - (a.amount ?? 0) || a.id.localeCompare(b.id));
  const atRisk = deals.filter((d) => d.risk >= 0.5);
  return {
    kind: 'deals',
    deals,
    atRisk: atRisk.length,
    totalAmountAtRisk: atRisk.reduce((s, d) => s + (d.amount ?? 0), 0),
    medianDaysInStage: median(deals.map((d) => d.daysInStage).filter((x): x is number => x !== null)),
  };
}

/** Call sentiment (from the warehouse) and themes (a fixed lexicon) over the collected calls. */
export function analyzeCalls(items: SourceItem[], analyses: Map<string, { sentiment: number; summary: string }>): CallAnalysis {
  const calls = items
    .filter((c) => analyses.has(c.id))
    .map((c) => ({ id: c.id, dealId: c.dealId ?? null, title: c.title, sentiment: analyses.get(c.id)!.sentiment, summary: analyses.get(c.id)!.summary }));
  const themes = Object.entries(THEMES)
    .map(([theme, re]) => ({ theme, count: items.filter((c) => re.test(c.text)).length }))
    .filter((t) => t.count > 0)
    .sort((a, b) => b.count - a.count || a.theme.localeCompare(b.theme));
  return {
    kind: 'calls',
    calls,
    averageSentiment: calls.length ? Number((calls.reduce((s, c) => s + c.sentiment, 0) / calls.length).toFixed(3)) : null,
    negativeCalls: calls.filter((c) => c.sentiment < -0.2).length,
    themes,
  };
}
