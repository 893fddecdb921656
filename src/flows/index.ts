export { analyzeCalls, analyzeDeals } from './analyze';
export { type BuildFlowOptions, buildWorkflowFlow, childJobId, requiredSources, sourceOfJobKey } from './build-flow';
export { type CollectFilters, filterKey, filtersFor } from './question';
export { type ChildValue, renderMarkdown, synthesizeReport } from './report';
