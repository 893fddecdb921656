import { nativeRequire } from '../runtime/native-require';

/** The fastify module (see nativeRequire for why it is not a plain import). */
export const loadFastify = () => nativeRequire<typeof import('fastify')>('fastify');
