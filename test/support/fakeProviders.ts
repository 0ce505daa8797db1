import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';

/**
 * A local server that speaks the OpenAI Chat Completions and Anthropic Messages streaming wire
 * formats, so the worker's real SDKs are exercised. The last user message steers it:
 *   [[fail:429]] / [[fail:500]] / [[fail:400]]   answer with that HTTP error (429 carries retry-after: 1)
 *   [[fail-once:500:tag]]                        fail the first request carrying tag, then answer normally
 *   [[cut]] / [[cut-once:tag]]                   send part of the answer, then drop the connection
 *   [[hang]] / [[hang-once:tag]]                 send part of the answer, then nothing
 *   [[slow:ms]]                                  wait ms between chunks
 * The answer is "Echo: " followed by the message without its directives, a chunk a word.
 */
export type RecordedRequest = { provider: 'openai' | 'anthropic'; headers: IncomingMessage['headers']; body: Record<string, unknown> };

export type FakeProviders = { url: string; openaiBaseUrl: string; anthropicBaseUrl: string; requests: RecordedRequest[]; close: () => Promise<void> };

const DIRECTIVE = /\[\[([a-z-]+)(?::([^\]]*))?\]\]/g;

function lastUserText(provider: 'openai' | 'anthropic', body: Record<string, unknown>): string {
  const messages = (body.messages as { role: string; content: string | { type: string; text: string }[] }[]) ?? [];
  const last = [...messages].reverse().find((m) => m.role === 'user');
  if (!last) return '';
  return typeof last.content === 'string' ? last.content : last.content.map((part) => part.text ?? '').join('');
}

type Plan = { fail?: number; cut: boolean; hang: boolean; slowMs: number; words: string[] };

function plan(text: string, seenTags: Set<string>): Plan {
  const result: Plan = { cut: false, hang: false, slowMs: 0, words: [] };
  for (const [, name, arg = ''] of text.matchAll(DIRECTIVE)) {
    const once = name!.endsWith('-once');
    const tagged = once ? `${name}:${arg}` : '';
    if (once) {
      if (seenTags.has(tagged)) continue;
      seenTags.add(tagged);
    }
    if (name === 'fail' || name === 'fail-once') result.fail = Number(arg.split(':')[0]);
    if (name === 'cut' || name === 'cut-once') result.cut = true;
    if (name === 'hang' || name === 'hang-once') result.hang = true;
    if (name === 'slow') result.slowMs = Number(arg);
  }
  const clean = text.replace(DIRECTIVE, '').trim();
  result.words = `Echo: ${clean}`.match(/\S+\s*/g) ?? [];
  return result;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
}

function sendError(res: ServerResponse, provider: 'openai' | 'anthropic', status: number) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (status === 429) headers['retry-after'] = '1';
  const message = `fake ${provider} error ${status}`;
  const body =
    provider === 'openai'
      ? { error: { message, type: status === 429 ? 'rate_limit_error' : 'server_error', code: null } }
      : { type: 'error', error: { type: status === 429 ? 'rate_limit_error' : status >= 500 ? 'api_error' : 'invalid_request_error', message } };
  res.writeHead(status, headers).end(JSON.stringify(body));
}

async function streamOpenAI(res: ServerResponse, body: Record<string, unknown>, p: Plan, inputTokens: number) {
  const id = `chatcmpl-${randomUUID()}`;
  const base = { id, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: body.model };
  const send = (payload: unknown) => res.write(`data: ${JSON.stringify(payload)}\n\n`);
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  send({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
  for (const [index, word] of p.words.entries()) {
    if ((p.cut || p.hang) && index === Math.min(2, p.words.length - 1)) {
      // Let what was written reach the client before the connection drops.
      if (p.cut) return void setTimeout(() => res.destroy(), 100);
      return; // hang: keep the connection open, send nothing more
    }
    if (p.slowMs) await sleep(p.slowMs);
    send({ ...base, choices: [{ index: 0, delta: { content: word }, finish_reason: null }] });
  }
  send({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
  const usage = {
    prompt_tokens: inputTokens,
    completion_tokens: p.words.length,
    total_tokens: inputTokens + p.words.length,
    prompt_tokens_details: { cached_tokens: 2 },
    completion_tokens_details: { reasoning_tokens: 1 },
  };
  send({ ...base, choices: [], usage });
  res.end('data: [DONE]\n\n');
}

async function streamAnthropic(res: ServerResponse, body: Record<string, unknown>, p: Plan, inputTokens: number) {
  const send = (event: string, payload: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(payload)}\n\n`);
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'request-id': `req_${randomUUID()}` });
  send('message_start', {
    type: 'message_start',
    message: {
      id: `msg_${randomUUID().replace(/-/g, '')}`,
      type: 'message',
      role: 'assistant',
      content: [],
      model: body.model,
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: inputTokens, output_tokens: 1, cache_read_input_tokens: 3, cache_creation_input_tokens: 0 },
    },
  });
  send('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
  send('ping', { type: 'ping' });
  for (const [index, word] of p.words.entries()) {
    if ((p.cut || p.hang) && index === Math.min(2, p.words.length - 1)) {
      if (p.cut) return void setTimeout(() => res.destroy(), 100);
      return;
    }
    if (p.slowMs) await sleep(p.slowMs);
    send('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: word } });
  }
  send('content_block_stop', { type: 'content_block_stop', index: 0 });
  send('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: p.words.length } });
  send('message_stop', { type: 'message_stop' });
  res.end();
}

export async function startFakeProviders(): Promise<FakeProviders> {
  const requests: RecordedRequest[] = [];
  const seenTags = new Set<string>();
  const open = new Set<ServerResponse>();
  const server: Server = createServer(async (req, res) => {
    const provider = req.url?.startsWith('/openai/') ? 'openai' : req.url?.startsWith('/anthropic/') ? 'anthropic' : undefined;
    const known = (provider === 'openai' && req.url === '/openai/v1/chat/completions') || (provider === 'anthropic' && req.url === '/anthropic/v1/messages');
    if (!provider || !known || req.method !== 'POST') return void res.writeHead(404).end();
    open.add(res);
    res.on('close', () => open.delete(res));
    const body = await readJson(req);
    requests.push({ provider, headers: req.headers, body });
    const text = lastUserText(provider, body);
    const p = plan(text, seenTags);
    if (p.fail) return sendError(res, provider, p.fail);
    const inputTokens = JSON.stringify(body.messages).split(/\s+/).length;
    if (provider === 'openai') await streamOpenAI(res, body, p, inputTokens);
    else await streamAnthropic(res, body, p, inputTokens);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    openaiBaseUrl: `${url}/openai/v1`,
    anthropicBaseUrl: `${url}/anthropic`,
    requests,
    close: async () => {
      for (const res of open) res.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
