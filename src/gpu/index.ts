// GPU discovery and tensor-parallel choice.
export * from './types.js';
export * from './nvidia-smi.js';
export * from './visible.js';
export * from './detect.js';
export * from './tensor-parallel.js';
export * from './assign.js';
