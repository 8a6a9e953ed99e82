/**
 * Vitest global setup of the browser tests: builds the web console into
 * `dist/console/` once, before any test starts a server that serves it (a
 * server reads the console's files when it starts).
 */
import { buildConsole } from '../helpers/browser.js';

export default function setup(): void {
  buildConsole();
}
