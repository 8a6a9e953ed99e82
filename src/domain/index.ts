export * from './changes.js';
export * from './config.js';
export * from './errors.js';
export * from './names.js';
export * from './values.js';
