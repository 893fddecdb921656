import * as W from './dataset-words';
import { type SeededRandom, seededRandom } from './prng';

const DAY_MS = 86_400_000;

/** How far back the demo timeline reaches from its anchor day (deal creation, calls, messages). */
export const DATASET_HISTORY_DAYS = 540;

/** A HubSpot-like deal. Times are epoch milliseconds (UTC); `closeDateDays` is days since 1970-01-01. */
interface DealRecord {
  id: string;
  name: string;
  stage: string;
  amountCents: number;
  owner: string;
  company: string;
  notes: string;
  createdAt: number;
  stageChangedAt: number;
  updatedAt: number;
  lastActivityAt: number;
  closeDateDays: number;
}

interface CallRecord {
  id: string;
  dealId: string;
  startedAt: number;
  title: string;
  transcript: string;
}

interface SlackRecord {
  id: string;
  channel: string;
  author: string;
  dealId: string | null;
  text: string;
  ts: number;
}

interface IssueRecord {
  id: string;
  title: string;
  description: string;
  state: string;
  priority: number;
  dealId: string | null;
  updatedAt: number;
}

export interface DemoDataset {
  deals: DealRecord[];
  calls: CallRecord[];
  slack: SlackRecord[];
  issues: IssueRecord[];
}

type Health = 'healthy' | 'neutral' | 'at-risk';

interface DealContext {
  company: string;
  product: string;
  kind: string;
  rep: string;
  contact: string;
  title: string;
  competitor: string;
}

/** Fills `{slot}` placeholders; slots not tied to the deal are drawn fresh each time. */
function fill(template: string, ctx: DealContext, rng: SeededRandom): string {
  return template.replace(/\{(\w+)\}/g, (_m, slot: string) => {
    switch (slot) {
      case 'company':
        return ctx.company;
      case 'product':
        return ctx.product;
      case 'kind':
        return ctx.kind;
      case 'rep':
        return ctx.rep;
      case 'contact':
        return ctx.contact;
      case 'competitor':
        return ctx.competitor;
      case 'feature':
        return rng.pick(W.FEATURES);
      case 'team':
        return rng.pick(W.TEAMS);
      case 'datasource':
        return rng.pick(W.DATA_SOURCES);
      case 'seats':
        return String(rng.int(2, 60) * 5);
      case 'pct':
        return String(rng.int(2, 8) * 5);
      default:
        return slot;
    }
  });
}

function sentimentLine(health: Health, ctx: DealContext, rng: SeededRandom): string {
  const roll = rng.next();
  const pool =
    health === 'healthy'
      ? roll < 0.8
        ? W.POSITIVE_LINES
        : roll < 0.9
          ? W.NEUTRAL_LINES
          : W.NEGATIVE_LINES
      : health === 'at-risk'
        ? roll < 0.8
          ? W.NEGATIVE_LINES
          : roll < 0.9
            ? W.NEUTRAL_LINES
            : W.POSITIVE_LINES
        : roll < 0.6
          ? W.NEUTRAL_LINES
          : roll < 0.8
            ? W.POSITIVE_LINES
            : W.NEGATIVE_LINES;
  return fill(rng.pick(pool), ctx, rng);
}

function between(rng: SeededRandom, from: number, to: number): number {
  return Math.floor(from + rng.next() * Math.max(0, to - from));
}

/**
 * Generates the demo dataset for a seed: `dealCount` deals (`D-1` …) with notes, about three Gong calls
 * and two Slack messages per deal, and some Linear issues — about 6.6 texts per deal in all (66,000 at
 * the default 10,000 deals), with sentiment that follows each deal's (hidden) health so that sentiment
 * analysis and semantic search find real patterns. Deals are generated one after the other from one
 * PRNG stream, so `D-1 … D-n` are the same for a given seed whatever `dealCount` is.
 *
 * Times are offsets from `anchorMs` (the end of the timeline): history reaches 540 days back, open deals
 * close up to 180 days after it. The same seed and anchor give identical rows; the same seed with another
 * anchor gives the same texts, ids and amounts with shifted times.
 */
export function generateDataset(seed: number, dealCount: number, anchorMs: number): DemoDataset {
  const rng = seededRandom(seed);
  const companies = W.COMPANY_STEMS.flatMap((stem) => W.COMPANY_SUFFIXES.map((suffix) => `${stem} ${suffix}`));
  const deals: DealRecord[] = [];
  const calls: CallRecord[] = [];
  const slack: SlackRecord[] = [];
  const issues: IssueRecord[] = [];

  const addIssue = (ctx: DealContext, dealId: string | null, after: number) => {
    const problem = fill(rng.pick(W.ISSUE_PROBLEMS), ctx, rng);
    const component = rng.pick(W.ISSUE_COMPONENTS);
    const reporter = dealId ? `Reported by ${ctx.company} (deal ${dealId}).` : 'Found in internal testing.';
    const impact = rng.pick([
      'Blocking the customer rollout.',
      'Workaround exists but users are frustrated.',
      'Low impact, cosmetic.',
      'Renewal at risk if not fixed this sprint.',
      'Affects several enterprise accounts.',
    ]);
    issues.push({
      id: `ENG-${issues.length + 1}`,
      title: `${component}: ${problem}`,
      description: `${reporter} ${problem}. ${impact} Steps: ${fill(rng.pick(W.NEUTRAL_LINES), ctx, rng)}`,
      state: rng.pick(W.ISSUE_STATES),
      priority: rng.int(0, 4),
      dealId,
      updatedAt: between(rng, after, anchorMs),
    });
  };

  for (let d = 1; d <= dealCount; d++) {
    const id = `D-${d}`;
    const ctx: DealContext = {
      company: rng.pick(companies),
      product: rng.pick(W.PRODUCTS),
      kind: rng.pick(W.DEAL_KINDS),
      rep: rng.pick(W.REPS),
      contact: `${rng.pick(W.CONTACT_FIRST)} ${rng.pick(W.CONTACT_LAST)}`,
      title: rng.pick(W.CONTACT_TITLES),
      competitor: rng.pick(W.COMPETITORS),
    };
    const stage = rng.pick(W.STAGES);
    const healthRoll = rng.next();
    const health: Health =
      stage === 'Closed Won' ? 'healthy' : stage === 'Closed Lost' ? 'at-risk' : healthRoll < 0.4 ? 'healthy' : healthRoll < 0.75 ? 'neutral' : 'at-risk';

    const createdAt = anchorMs - rng.int(1, DATASET_HISTORY_DAYS) * DAY_MS - rng.int(0, 86_399) * 1000;
    const stageChangedAt = between(rng, createdAt, anchorMs);
    const updatedAt = between(rng, stageChangedAt, anchorMs);
    const lastActivityAt = between(rng, stageChangedAt, anchorMs);
    const closed = stage.startsWith('Closed');
    const closeMs = closed ? stageChangedAt : anchorMs + rng.int(7, 180) * DAY_MS;

    deals.push({
      id,
      name: `${ctx.company} - ${ctx.product} ${ctx.kind}`,
      stage,
      amountCents: rng.int(50, 7500) * 10_000 + rng.int(0, 99),
      owner: ctx.rep,
      company: ctx.company,
      notes:
        `${ctx.company} is evaluating ${ctx.product} (${ctx.kind}). Champion: ${ctx.contact}, ${ctx.title}. ` +
        `${sentimentLine(health, ctx, rng)} Main competitor: ${ctx.competitor}.`,
      createdAt,
      stageChangedAt,
      updatedAt,
      lastActivityAt,
      closeDateDays: Math.floor(closeMs / DAY_MS),
    });

    const callCount = rng.int(1, 5);
    for (let c = 0; c < callCount; c++) {
      const lines = [`${ctx.rep} met with ${ctx.contact} (${ctx.title}) from ${ctx.company}.`];
      const body = rng.int(2, 4);
      for (let k = 0; k < body; k++) {
        // Draw again (a bounded number of times) rather than repeat the previous sentence verbatim.
        let line = '';
        for (let attempt = 0; attempt < 3 && (line === '' || lines.includes(line)); attempt++) {
          line = k === 1 ? fill(rng.pick(W.NEUTRAL_LINES), ctx, rng) : sentimentLine(health, ctx, rng);
        }
        lines.push(line);
      }
      lines.push(`Next steps: ${rng.pick(W.NEXT_STEPS)}.`);
      calls.push({
        id: `G-${calls.length + 1}`,
        dealId: id,
        startedAt: between(rng, createdAt, anchorMs),
        title: `${ctx.company}: ${rng.pick(W.CALL_TITLES)}`,
        transcript: lines.join(' '),
      });
    }

    const messageCount = rng.int(0, 3);
    for (let m = 0; m < messageCount; m++) {
      slack.push({
        id: `S-${slack.length + 1}`,
        channel: rng.pick(W.SLACK_CHANNELS),
        author: rng.chance(0.7) ? ctx.rep : rng.pick(W.REPS),
        dealId: id,
        text: fill(rng.pick(W.SLACK_DEAL_LINES), ctx, rng),
        ts: between(rng, createdAt, anchorMs),
      });
    }
    if (rng.chance(0.5)) {
      slack.push({
        id: `S-${slack.length + 1}`,
        channel: rng.pick(W.SLACK_CHANNELS),
        author: rng.pick(W.REPS),
        dealId: null,
        text: fill(rng.pick(W.SLACK_GENERAL_LINES), ctx, rng),
        ts: between(rng, anchorMs - DATASET_HISTORY_DAYS * DAY_MS, anchorMs),
      });
    }

    if (rng.chance(0.35)) addIssue(ctx, id, createdAt);
    if (rng.chance(0.25)) addIssue(ctx, null, anchorMs - 365 * DAY_MS);
  }
  return { deals, calls, slack, issues };
}
