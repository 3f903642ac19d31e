// The vLLM engine: command line, environment, model inspection.
export * from './command.js';
export * from './model.js';
export * from './model-path.js';
