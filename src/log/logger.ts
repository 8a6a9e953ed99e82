import { pino, type Logger } from 'pino';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/**
 * The process logger: JSON lines on stdout. Components take a child logger
 * (`log.child({ component })`). Config values and tokens are never logged.
 */
export function createLogger(level: LogLevel): Logger {
  return pino({
    level,
    base: { service: 'cfgd' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
