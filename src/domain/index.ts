export * from './changes.js';
export * from './config.js';
export * from './errors.js';
export * from './names.js';
export * from './values.js';
export * from './credentials.js';
export * from './grants.js';
