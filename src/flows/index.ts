export { analyzeCalls, analyzeDeals } from './analyze';
export { buildWorkflowFlow, childJobId, requiredSources, sourceOfJobKey, type BuildFlowOptions } from './build-flow';
export { filterKey, filtersFor, type CollectFilters } from './question';
export { renderMarkdown, synthesizeReport, type ChildValue } from './report';
