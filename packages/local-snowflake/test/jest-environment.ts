import vm from 'node:vm';
import { TestEnvironment } from 'jest-environment-node';

/**
 * jest's `node` test environment, with the test file's global object an ordinary object rather than one
 * contextified by Node (`vm.constants.DONT_CONTEXTIFY`, Node 22.8 and later). The fleet's tests use the same
 * environment (test/jest-environment.ts in the repository root; this package does not import the fleet's tests).
 *
 * Why: in a contextified context every global name the code looks up (`Math`, `Buffer`, `JSON`, …) goes through
 * Node's interceptors, and V8 can neither cache nor inline the lookup: the stand-in embedder, the reply encoding
 * and the driver run several times slower under jest than in Node. What a test sees does not change: its file
 * still runs in a context of its own, with its own builtins, and jest installs the same globals on it.
 */
export default class LocalSnowflakeTestEnvironment extends TestEnvironment {
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
