export * from './deals';
export * from './embedding';
export * from './errors';
export * from './queues';
export * from './text';
export * from './validate';
export * from './vector-codec';
export * from './workflows';
