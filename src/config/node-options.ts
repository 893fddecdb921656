/**
 * Node flags the embeddings role runs with: a 64 MB young generation. A coalescing worker keeps its held
 * jobs and their batch rowsets alive across a warehouse round trip, so with V8's default 16 MB most young
 * objects survive and get copied (docs/benchmarks.md). The embeddings Deployment sets this as NODE_OPTIONS
 * (a test checks it), and the benchmarks that measure that role run under it. A leaf module without
 * imports: `bin/fleet.js` reads it before anything else is loaded.
 */
export const EMBEDDINGS_NODE_OPTIONS = '--max-semi-space-size=64';
