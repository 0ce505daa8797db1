import winston from 'winston';
import { currentLogContext } from './context.js';
import { activeTraceId } from './tracing.js';

// Anything that looks like a runyard key is masked before a line is written, so a secret
// that slips into an error message never reaches the logs.
const KEY_PATTERN = /ry_(sk|ek|st)_[A-Za-z0-9_-]{8,}/g;
export const redactSecrets = (text: string): string => text.replace(KEY_PATTERN, 'ry_$1_[redacted]');

const addContext = winston.format((info) => {
  const traceId = activeTraceId();
  return Object.assign(info, currentLogContext(), traceId ? { traceId } : {}, info);
});
/** A copy of `value` with every string masked, at any depth: nested objects, arrays, errors and their causes. */
export function redactDeep(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (typeof value !== 'object' || value === null || depth > 8) return value;
  if (seen.has(value)) return '[circular]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((item) => redactDeep(item, depth + 1, seen));
  if (value instanceof Error) {
    return {
      name: value.name,
      message: redactSecrets(value.message),
      ...(value.cause !== undefined ? { cause: redactDeep(value.cause, depth + 1, seen) } : {}),
    };
  }
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, redactDeep(item, depth + 1, seen)]));
}

const redact = winston.format((info) => {
  for (const [key, value] of Object.entries(info)) (info as Record<string, unknown>)[key] = redactDeep(value);
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
