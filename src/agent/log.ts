/**
 * The agent's logger: JSON lines, in the server's shape (ISO time, level by
 * name), on the stream it is given. Config values and tokens are never logged.
 */
import { pino, type Logger } from 'pino';

/** The levels `CFGD_LOG_LEVEL` may name. */
const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);

/** A logger writing to `destination` at `level` (info when `level` is not one of pino's). */
export function agentLogger(destination: { write(text: string): unknown }, level: string | undefined): Logger {
  return pino(
    {
      level: level !== undefined && LEVELS.has(level) ? level : 'info',
      base: { service: 'cfgd', component: 'agent' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    { write: (text: string) => void destination.write(text) },
  );
}
