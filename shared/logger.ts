import winston from 'winston';
import { currentLogContext } from './context.js';

// Anything that looks like a runyard key is masked before a line is written, so a secret
// that slips into an error message never reaches the logs.
const KEY_PATTERN = /ry_(sk|ek|st)_[A-Za-z0-9_-]{8,}/g;
export const redactSecrets = (text: string): string => text.replace(KEY_PATTERN, 'ry_$1_[redacted]');

const addContext = winston.format((info) => Object.assign(info, currentLogContext(), info));
const redact = winston.format((info) => {
  for (const [key, value] of Object.entries(info)) {
    if (typeof value === 'string') (info as Record<string, unknown>)[key] = redactSecrets(value);
  }
  return info;
});

export type Logger = winston.Logger;

export function createLogger(service: 'api' | 'worker' | 'cli' | 'bench', level = 'info'): Logger {
  const threshold = winston.config.npm.levels[level === 'silent' ? 'error' : level] ?? 2;
  const logger = winston.createLogger({
    level: level === 'silent' ? 'error' : level,
    silent: level === 'silent',
    defaultMeta: { service },
    format: winston.format.combine(addContext(), winston.format.errors({ stack: false }), winston.format.timestamp(), redact(), winston.format.json()),
    transports: [new winston.transports.Console()],
  });
  // winston builds a line and runs it through its stream and formats before the transport drops it
  // by level: a call below the level returns at once instead (three info lines per run otherwise
  // cost ~2% of a busy worker).
  for (const [name, severity] of Object.entries(winston.config.npm.levels)) {
    if (severity > threshold || level === 'silent') Object.assign(logger, { [name]: () => logger });
  }
  return logger;
}
