import vm from 'node:vm';
import { TestEnvironment } from 'jest-environment-node';

/**
 * jest's `node` test environment, with the test file's global object an ordinary object rather than one
 * contextified by Node (`vm.constants.DONT_CONTEXTIFY`, Node 22.8 and later).
 *
 * Why: in a contextified context every global name the code looks up (`Math`, `Date`, `Buffer`, `JSON`, …) goes
 * through Node's interceptors, and V8 can neither cache nor inline the lookup. Code that calls a builtin in a
 * loop runs about ten times slower than outside jest: `clusteredVectors` (src/bench/ann.ts, the index tests'
 * data) took 3.4 s for 4,000 × 768 dimensions under jest and 0.3 s in Node; with this environment, 0.3 s in
 * jest too. The in-process local warehouse, the driver, BullMQ and the fleet's own code pay the same tax on
 * every global lookup. What a test sees does not change: its file still runs in a context of its own, with its
 * own builtins (`instanceof` across the boundary behaves as before), and jest installs the same globals on it.
 */
export default class FleetTestEnvironment extends TestEnvironment {
  constructor(...args: ConstructorParameters<typeof TestEnvironment>) {
    const { createContext } = vm;
    const plain = vm.constants?.DONT_CONTEXTIFY;
    // jest-environment-node creates its context in its constructor with `vm.createContext()`: ask for a plain one.
    if (plain !== undefined) vm.createContext = (() => createContext(plain)) as typeof vm.createContext;
    try {
      super(...args);
    } finally {
      vm.createContext = createContext;
    }
  }
}
