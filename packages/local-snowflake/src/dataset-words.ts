/**
 * Word lists for the demo dataset. Texts are assembled from these by `dataset.ts`; the lists are long
 * enough that semantic search over 50,000 texts has topics to tell apart (pricing vs. security vs.
 * onboarding…) and sentiment has both praise and complaints to find.
 */

export const COMPANY_STEMS = [
  'Acme',
  'Globex',
  'Initech',
  'Umbrella',
  'Stark',
  'Wayne',
  'Hooli',
  'Vandelay',
  'Soylent',
  'Tyrell',
  'Cyberdyne',
  'Wonka',
  'Aperture',
  'Massive Dynamic',
  'Pied Piper',
  'Oscorp',
  'Monarch',
  'Sirius',
  'Nakatomi',
  'Gekko',
  'Prestige',
  'Dunder',
  'Bluth',
  'Krusty',
  'Duff',
  'Oceanic',
  'Virtucon',
  'Zorg',
  'Contoso',
  'Fabrikam',
  'Northwind',
  'Tailspin',
  'Litware',
  'Adatum',
  'Woodgrove',
  'Lamna',
  'Proseware',
  'Wingtip',
  'Alpine',
  'Blue Yonder',
  'Coho',
  'Fourth Coffee',
  'Margie',
  'Trey',
  'Humongous',
  'Lucerne',
  'Graphic',
  'Relecloud',
  'Southridge',
  'Wide World',
] as const;

export const COMPANY_SUFFIXES = [
  'Corp',
  'Labs',
  'Systems',
  'Health',
  'Logistics',
  'Bank',
  'Retail',
  'Energy',
  'Media',
  'Foods',
  'Insurance',
  'Analytics',
  'Robotics',
  'Pharma',
  'Airlines',
  'Telecom',
] as const;

export const PRODUCTS = [
  'Analytics Platform',
  'Data Cloud',
  'Revenue Intelligence',
  'Forecasting Suite',
  'Customer 360',
  'Embedded BI',
  'Data Pipelines',
  'Governance Add-on',
  'AI Assistant',
  'Reporting Pro',
] as const;

export const DEAL_KINDS = ['new business', 'expansion', 'renewal', 'upsell', 'pilot', 'migration'] as const;

export const STAGES = ['Prospecting', 'Qualification', 'Discovery', 'Demo', 'Proposal', 'Negotiation', 'Closed Won', 'Closed Lost'] as const;

export const REPS = [
  'Ava Patel',
  'Liam Chen',
  'Sofia Garcia',
  'Noah Kim',
  'Mia Johnson',
  'Lucas Silva',
  'Emma Rossi',
  'Ethan Brown',
  'Olivia Novak',
  'Mateo Lopez',
  'Chloe Martin',
  'Arjun Rao',
  'Hannah Weber',
  'Yuki Tanaka',
  'Grace Okafor',
  'Daniel Cohen',
  'Zara Ahmed',
  'Leo Dubois',
  'Isla Murphy',
  'Omar Haddad',
] as const;

export const CONTACT_FIRST = [
  'Priya',
  'James',
  'Elena',
  'Marcus',
  'Aiko',
  'David',
  'Fatima',
  'Tom',
  'Laura',
  'Carlos',
  'Nina',
  'Sam',
  'Ingrid',
  'Kwame',
  'Rachel',
  'Victor',
  'Mei',
  'Jonas',
  'Amara',
  'Peter',
] as const;

export const CONTACT_LAST = [
  'Singh',
  'Walker',
  'Petrova',
  'Reed',
  'Sato',
  'Miller',
  'Khan',
  'Nguyen',
  'Schmidt',
  'Alvarez',
  'Berg',
  'Osei',
  'Levy',
  'Dimitrov',
  'Wong',
  'Larsen',
  'Mensah',
  'Fischer',
  'Costa',
  'Hughes',
] as const;

export const CONTACT_TITLES = [
  'VP of Data',
  'Head of Analytics',
  'CFO',
  'CIO',
  'Director of RevOps',
  'Data Engineering Lead',
  'Procurement Manager',
  'CTO',
  'VP of Sales',
  'Head of Security',
] as const;

export const COMPETITORS = ['Databricks', 'BigQuery', 'Redshift', 'Tableau', 'Looker', 'Power BI', 'Synapse', 'an in-house build'] as const;

export const FEATURES = [
  'the forecasting module',
  'row-level security',
  'the Salesforce connector',
  'usage-based pricing',
  'SSO and SCIM provisioning',
  'the semantic layer',
  'real-time dashboards',
  'the AI assistant',
  'data sharing',
  'the audit log',
  'workload isolation',
  'the embedded analytics SDK',
  'cost controls',
  'the dbt integration',
  'the Slack alerts',
] as const;

export const TEAMS = ['finance', 'marketing', 'sales ops', 'supply chain', 'customer success', 'data science', 'security', 'product'] as const;

export const DATA_SOURCES = ['Salesforce', 'HubSpot', 'Zendesk', 'SAP', 'Postgres', 'Kafka', 'Shopify', 'NetSuite', 'Workday', 'Stripe'] as const;

export const CALL_TITLES = [
  'Discovery call',
  'Technical deep dive',
  'Pricing review',
  'Security review',
  'Executive alignment',
  'Quarterly business review',
  'Implementation kickoff',
  'Renewal discussion',
  'Procurement sync',
  'Proof of concept readout',
  'Champion check-in',
  'Legal and redlines',
] as const;

export const POSITIVE_LINES = [
  '{contact} said the team is really excited about {feature}.',
  'They were impressed by the {feature} demo and want to move fast.',
  'Budget is approved and legal review is already underway.',
  'They love how easy the onboarding was and see strong value for the {team} team.',
  '{contact} confirmed we are the preferred vendor over {competitor}.',
  'Great call: they want to expand to the {team} team next quarter.',
  'The proof of concept was a success and the dashboards loaded much faster than their current tool.',
  '{contact} is a strong champion and already presented the business case to the CFO.',
  'They are thrilled with support and would recommend us to peers.',
  'Usage doubled this month and the {team} team is asking for more seats.',
] as const;

export const NEGATIVE_LINES = [
  '{contact} raised concerns about pricing compared to {competitor}.',
  'They are frustrated by the delays in the {feature} rollout.',
  'Procurement flagged a budget freeze until next quarter.',
  'The security review is blocked on our SOC 2 report.',
  '{contact} was disappointed with support response times and mentioned churn risk.',
  'They are evaluating {competitor} and the decision is stalled.',
  'The {datasource} sync keeps failing and the {team} team lost trust in the numbers.',
  'Layoffs hit the data team and our champion is no longer responsive.',
  'They complained that invoices are confusing and too expensive for the value they see.',
  'An outage last week caused an escalation to their CIO.',
] as const;

export const NEUTRAL_LINES = [
  'We walked through {feature} and how it connects to {datasource}.',
  'They asked for a sandbox to test {feature} with {datasource} data.',
  '{rep} will loop in a solutions engineer for the {feature} questions.',
  'We agreed to reconvene after their planning cycle.',
  'They currently run reporting on {competitor} and export to spreadsheets.',
  'The {team} team owns the budget; {contact} will set up a meeting with them.',
  'We reviewed the implementation timeline and the data migration plan.',
  'They need {seats} seats to start and want annual billing.',
] as const;

export const NEXT_STEPS = [
  'send the mutual action plan by Friday',
  'schedule a technical workshop',
  'share the security questionnaire',
  'draft the order form',
  'set up the sandbox',
  'book an executive sponsor call',
  'send updated pricing',
  'share customer references',
  'review the redlines with legal',
  'confirm the rollout plan',
] as const;

export const SLACK_CHANNELS = [
  '#deals',
  '#sales-emea',
  '#sales-na',
  '#cs-escalations',
  '#product-feedback',
  '#deal-desk',
  '#exec-updates',
  '#support',
] as const;

export const SLACK_DEAL_LINES = [
  'Heads up: {company} is asking for a {pct}% discount on the {product} {kind}.',
  '{company} just signed! Congrats {rep} 🎉',
  '{company} wants {feature} by end of quarter, is that on the roadmap?',
  'Escalation from {company}: the {datasource} sync has been failing since Monday.',
  'Can deal desk approve non-standard payment terms for {company}?',
  '{rep}: {company} went quiet after the pricing review, any ideas to re-engage {contact}?',
  '{company} renewal is at risk, they are evaluating {competitor}.',
  'Great QBR with {company}, usage is up and they want to add the {team} team.',
  '{company} security team needs the pen test report before they sign.',
  'Legal redlines for {company} are back, mostly about data residency.',
  '{contact} from {company} loved the {feature} demo.',
  '{company} churned: they said the product was too expensive for their use case.',
] as const;

export const SLACK_GENERAL_LINES = [
  'Reminder: pipeline review is Thursday at 10.',
  'Who owns forecasting for the EMEA region this quarter?',
  'New pricing sheet is in the enablement folder.',
  'Support queue is long today, please be patient with escalations.',
  'Win-loss analysis for last quarter is posted, competitor pricing keeps coming up.',
  'The {feature} beta is open for design partners.',
  'Please log your calls, Gong coverage dropped to 70% this week.',
  'Quarter-end push: focus on deals in Negotiation.',
] as const;

export const ISSUE_COMPONENTS = ['Connectors', 'Dashboards', 'SSO', 'Billing', 'API', 'Exports', 'Permissions', 'Alerts', 'Search', 'Onboarding'] as const;

export const ISSUE_PROBLEMS = [
  '{datasource} sync fails for large tables',
  'SAML login loops back to the sign-in page',
  'CSV export times out after 60 seconds',
  'Usage invoice shows the wrong seat count',
  'Rate limit errors on bulk API calls',
  'Row-level security not applied to shared dashboards',
  'Alert emails arrive twice',
  'Search misses recently updated records',
  'Onboarding wizard crashes on step 3',
  'Dashboard filters reset after refresh',
  'Timezone shift in scheduled reports',
  'Slow query performance on the forecast view',
] as const;

export const ISSUE_STATES = ['Backlog', 'Todo', 'In Progress', 'In Review', 'Done', 'Canceled'] as const;
