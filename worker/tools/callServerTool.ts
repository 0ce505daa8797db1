import { setTimeout as sleep } from 'node:timers/promises';
import { traceHeaders } from '../../shared/infra/tracing.js';
import { signedHeaders, type ToolSecrets } from '../../shared/accounts/toolSecrets.js';
import { postJson, PostTimeout } from './httpPost.js';
import type { ToolOutcome as StepOutcome } from '../../shared/agent/steps.js';

/** What a server tool gives: an output for the model, or an error text for it (never a denial). */
export type ToolOutcome = Exclude<StepOutcome, { denied: true }>;

/** How a call ended, for metrics (a bounded set: no caller-chosen values). */
export type ToolCallOutcomeKind = 'output' | 'error_result' | 'http_4xx' | 'http_5xx' | 'timeout' | 'connection' | 'too_large' | 'redirect' | 'invalid_answer';

export type ServerToolRequest = {
  url: string;
  body: { runId: string; chatId: string; toolCallId: string; toolName: string; input: unknown };
  /** Stable for the tool call across retries and attempts: `webhook-id` and `Idempotency-Key`. */
  idempotencyKey: string;
  /** The run's ephemeral key, sent as the Bearer token so the tool can call runyard back for this run. */
  apiKey: string;
  /** Where the tool reaches runyard with that key (PUBLIC_BASE_URL): sent as `x-runyard-api-url`. */
  apiUrl: string;
  secrets: ToolSecrets;
  signal: AbortSignal;
};

/** The header that tells a server tool or MCP server where to call runyard back with the run's key. */
export const RUNYARD_API_URL_HEADER = 'x-runyard-api-url';

export type ServerToolOptions = { timeoutMs: number; maxOutputBytes: number; maxTries: number; retryBaseMs: number };

class Retryable extends Error {
  constructor(
    readonly kind: ToolCallOutcomeKind,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Calls a server tool (SPEC section 9): POST, signed per Standard Webhooks, with the run's key.
 * 5xx answers, timeouts and connection errors are retried with backoff; what is still failing
 * after `maxTries`, other 4xx, redirects, and outputs over `maxOutputBytes` become an error result
 * for the model. Only the run's own abort (cancel, lost ownership) throws.
 */
export async function callServerTool(
  request: ServerToolRequest,
  opts: ServerToolOptions,
): Promise<{ outcome: ToolOutcome; kind: ToolCallOutcomeKind; tries: number }> {
  const payload = JSON.stringify(request.body);
  for (let tries = 1; ; tries++) {
    try {
      const result = await callOnce(request, payload, opts);
      return { ...result, tries };
    } catch (err) {
      request.signal.throwIfAborted();
      if (!(err instanceof Retryable)) throw err;
      if (tries >= opts.maxTries) return { outcome: { error: `${err.message} (after ${tries} tries)` }, kind: err.kind, tries };
      const delay = opts.retryBaseMs * 2 ** (tries - 1) + Math.floor(Math.random() * opts.retryBaseMs * 0.2);
      await sleep(delay, undefined, { signal: request.signal });
    }
  }
}

async function callOnce(request: ServerToolRequest, payload: string, opts: ServerToolOptions): Promise<{ outcome: ToolOutcome; kind: ToolCallOutcomeKind }> {
  const headers = {
    'content-type': 'application/json',
    authorization: `Bearer ${request.apiKey}`,
    [RUNYARD_API_URL_HEADER]: request.apiUrl,
    'idempotency-key': request.idempotencyKey,
    'user-agent': 'runyard-tools/1',
    ...traceHeaders(),
    ...signedHeaders(request.secrets, request.idempotencyKey, payload),
  };
  let answer: { status: number; text: string | null };
  try {
    answer = await postJson(new URL(request.url), headers, payload, request.signal, opts.timeoutMs, opts.maxOutputBytes);
  } catch (err) {
    request.signal.throwIfAborted();
    if (err instanceof PostTimeout) throw new Retryable('timeout', `the tool did not answer within ${opts.timeoutMs} ms`);
    throw new Retryable('connection', `the tool could not be reached or broke off its answer: ${(err as Error).message}`);
  }
  const { status, text } = answer;
  if (status >= 300 && status < 400) return { outcome: { error: `the tool answered ${status} (a redirect; redirects are not followed)` }, kind: 'redirect' };
  if (status >= 500) throw new Retryable('http_5xx', `the tool answered ${status}`);
  if (text === null) return { outcome: { error: `the tool's answer is larger than ${opts.maxOutputBytes} bytes` }, kind: 'too_large' };
  if (status >= 400) return { outcome: { error: `the tool answered ${status}${text ? `: ${text.slice(0, 500)}` : ''}` }, kind: 'http_4xx' };
  return parseAnswer(text);
}

function parseAnswer(text: string): { outcome: ToolOutcome; kind: ToolCallOutcomeKind } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { outcome: { error: 'the tool answered with something other than JSON' }, kind: 'invalid_answer' };
  }
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
    const answer = body as Record<string, unknown>;
    if (typeof answer.error === 'string') return { outcome: { error: answer.error }, kind: 'error_result' };
    if ('output' in answer) return { outcome: { output: answer.output ?? null }, kind: 'output' };
  }
  return { outcome: { error: 'the tool answered without "output" or "error"' }, kind: 'invalid_answer' };
}
