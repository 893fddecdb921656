/**
 * LOCAL STAND-INS for `SNOWFLAKE.CORTEX.SENTIMENT` and `SNOWFLAKE.CORTEX.SUMMARIZE`. They are small,
 * deterministic heuristics (a lexicon and a sentence cutter), not language models: they exist so that
 * flows which analyse calls and messages have plausible, repeatable values to work with locally.
 */

const POSITIVE = new Set(
  (
    'excited exciting great love loved loves happy impressed impressive excellent strong thrilled pleased ' +
    'approved approve signed expand expanding expansion upsell renew renewed champion win won winning smooth ' +
    'easy valuable value confident ahead interested enthusiastic success successful helpful fantastic perfect ' +
    'aligned delighted recommend solid resolved fixed faster growth growing wins praised glad awesome keen ' +
    'committed priority momentum optimistic'
  ).split(' '),
);

const NEGATIVE = new Set(
  (
    'concern concerns concerned worried worry risk risky delay delays delayed churn churning cancel cancelled ' +
    'cancellation frustrated frustrating frustration angry unhappy disappointed disappointing blocker blockers ' +
    'blocked bug bugs outage outages slow expensive pushback competitor losing lost downgrade escalation ' +
    'escalated problem problems issue issues broken fail failed failing failure poor terrible confusing hesitant ' +
    'stalled freeze cut cuts layoffs unresponsive ghosted threat threatened complaint complained missing ' +
    'overdue behind skeptical doubt doubts unclear'
  ).split(' '),
);

const NEGATORS = new Set(
  "not no never without hardly barely don't doesn't didn't isn't wasn't aren't weren't won't can't cannot dont cant isnt wasnt".split(' '),
);

const INTENSIFIERS = new Set('very really extremely super so highly incredibly'.split(' '));

/** How many following words a negator flips ("not at all happy" still reads as negative). */
const NEGATION_WINDOW = 3;

const WORD_PATTERN = /[\p{L}\p{N}]+(?:['’][\p{L}]+)*/gu;

/**
 * Sentiment of a text in [-1, 1] from a small sales-flavoured lexicon, with negation ("not happy") and
 * intensifiers ("really excited"). Neutral or empty text scores 0. Deterministic: the same text always
 * scores the same. LOCAL STAND-IN for `SNOWFLAKE.CORTEX.SENTIMENT`.
 *
 * @example sentimentScore('They are really excited about the rollout') // > 0
 */
export function sentimentScore(text: string): number {
  const words = text.toLowerCase().replace(/’/g, "'").match(WORD_PATTERN) ?? [];
  let raw = 0;
  let negateFor = 0;
  let boost = 1;
  for (const w of words) {
    if (NEGATORS.has(w)) {
      negateFor = NEGATION_WINDOW;
      continue;
    }
    if (INTENSIFIERS.has(w)) {
      boost = 1.5;
      continue;
    }
    let polarity = POSITIVE.has(w) ? 1 : NEGATIVE.has(w) ? -1 : 0;
    if (polarity !== 0) {
      if (negateFor > 0) polarity = -polarity;
      raw += polarity * boost;
      negateFor = 0;
    } else if (negateFor > 0) {
      negateFor--;
    }
    boost = 1;
  }
  // Odd, bounded squashing: one cue gives about ±0.45, three about ±0.83, never beyond ±1.
  const score = raw / Math.sqrt(raw * raw + 4);
  return Math.round(score * 10_000) / 10_000;
}

/** Upper bound of a summary's length in characters. */
export const SUMMARY_MAX_CHARS = 280;

/**
 * The leading sentence(s) of a text, at most {@link SUMMARY_MAX_CHARS} characters, whitespace collapsed.
 * A first sentence that is too long is cut at a word boundary and ends with "...". Empty text gives "".
 * LOCAL STAND-IN for `SNOWFLAKE.CORTEX.SUMMARIZE`.
 */
export function summarizeText(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat.length <= SUMMARY_MAX_CHARS) return flat;
  const sentences = flat.split(/(?<=[.!?])\s+/);
  let out = '';
  for (const s of sentences) {
    const candidate = out ? `${out} ${s}` : s;
    if (candidate.length > SUMMARY_MAX_CHARS) break;
    out = candidate;
  }
  if (out) return out;
  const cut = flat.slice(0, SUMMARY_MAX_CHARS - 3);
  const lastSpace = cut.lastIndexOf(' ');
  return `${lastSpace > SUMMARY_MAX_CHARS / 2 ? cut.slice(0, lastSpace) : cut}...`;
}
