import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomUUID } from 'node:crypto';

/**
 * A local server that speaks the OpenAI Chat Completions and Anthropic Messages streaming wire
 * formats, so the worker's real SDKs are exercised. The last user message steers it:
 *   [[fail:429]] / [[fail:500]] / [[fail:400]]   answer with that HTTP error (429 carries retry-after: 1)
 *   [[fail-once:500:tag]]                        fail the first request carrying tag, then answer normally
 *   [[fail-at:N:400]]                            answer step N (1-based) with that HTTP error
 *   [[cut]] / [[cut-once:tag]]                   send part of the answer, then drop the connection
 *   [[hang]] / [[hang-once:tag]]                 send part of the answer, then nothing
 *   [[slow:ms]]                                  wait ms between chunks
 *   [[callN:tool:{json}]]                        in step N (1-based), call `tool` with that input; several in
 *                                                one step are parallel calls, streamed in fragments
 * The answer is "Echo: " followed by the message without its directives, a chunk a word; after tool
 * calls, followed by " | results: " and the tool results it received, in order.
 * Like the real APIs it answers 400 when tool calls and results are not paired.
 */
/** A file a request carried, decoded as the provider would: its kind, type and the SHA-256 of its bytes (or its text). */
export type ReceivedFile = { kind: 'image' | 'pdf'; mediaType: string; sha256: string; bytes: number } | { kind: 'text'; text: string };

export type RecordedRequest = {
  provider: 'openai' | 'anthropic';
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
  at: number;
  /** The files and extra text parts of its user turns, in order, decoded from each provider's own format. */
  files: ReceivedFile[];
};

export type FakeProviders = {
  url: string;
  openaiBaseUrl: string;
  anthropicBaseUrl: string;
  requests: RecordedRequest[];
  /**
   * Holds the next request that `matches` (once) before answering it: `arrived` resolves when it
   * came, `release` lets it be answered (a request whose client is gone by then is dropped).
   */
  hold: (matches: (request: RecordedRequest) => boolean) => { arrived: Promise<RecordedRequest>; release: () => void };
  close: () => Promise<void>;
};

type Hold = { matches: (request: RecordedRequest) => boolean; arrive: (request: RecordedRequest) => void; released: Promise<void> };

const DIRECTIVE = /\[\[([a-z-]+)(?::([^\]]*))?\]\]/g;

/** Splits a call's JSON input into the fragments a provider streams it in. */
const fragments = (input: string) => input.match(/.{1,7}/gs) ?? [''];

type WireMessage = {
  role: string;
  content: string | null | { type: string; text?: string; id?: string; tool_use_id?: string; content?: unknown }[];
  tool_calls?: { id: string }[];
  tool_call_id?: string;
};

const blocksOf = (message: WireMessage) => (Array.isArray(message.content) ? message.content : []);
const isToolResultTurn = (provider: 'openai' | 'anthropic', m: WireMessage) =>
  provider === 'openai' ? m.role === 'tool' : m.role === 'user' && blocksOf(m).some((b) => b.type === 'tool_result');

/** The last user turn that a person wrote (not one carrying tool results). */
function lastUserText(provider: 'openai' | 'anthropic', body: Record<string, unknown>): string {
  const messages = (body.messages as WireMessage[]) ?? [];
  const last = [...messages].reverse().find((m) => m.role === 'user' && !isToolResultTurn(provider, m));
  if (!last) return '';
  return typeof last.content === 'string'
    ? last.content
    : blocksOf(last)
        .map((part) => part.text ?? '')
        .join('');
}

/** The tool results sent since the last user turn, in order, and how many tool-calling steps came before. */
function toolRounds(provider: 'openai' | 'anthropic', body: Record<string, unknown>): { step: number; results: string[] } {
  const messages = (body.messages as WireMessage[]) ?? [];
  const lastUser = messages.findLastIndex((m) => m.role === 'user' && !isToolResultTurn(provider, m));
  const since = messages.slice(lastUser + 1);
  const step = since.filter((m) => m.role === 'assistant').length;
  const results = since.flatMap((m) =>
    provider === 'openai'
      ? m.role === 'tool'
        ? [String(m.content)]
        : []
      : blocksOf(m)
          .filter((b) => b.type === 'tool_result')
          .map((b) => String(b.content)),
  );
  return { step, results };
}

/** The real APIs refuse a conversation whose tool calls and results are not paired: so does this fake. */
function pairingError(provider: 'openai' | 'anthropic', body: Record<string, unknown>): string | null {
  const messages = (body.messages as WireMessage[]) ?? [];
  for (const [i, m] of messages.entries()) {
    const calls =
      provider === 'openai'
        ? (m.tool_calls ?? []).map((c) => c.id)
        : blocksOf(m)
            .filter((b) => b.type === 'tool_use')
            .map((b) => b.id!);
    if (m.role === 'assistant' && calls.length) {
      const answered =
        provider === 'openai'
          ? messages
              .slice(i + 1)
              .filter((n, j, rest) => n.role === 'tool' && rest.slice(0, j).every((x) => x.role === 'tool'))
              .map((n) => n.tool_call_id)
          : blocksOf(messages[i + 1] ?? { role: '', content: null })
              .filter((b) => b.type === 'tool_result')
              .map((b) => b.tool_use_id);
      const missing = calls.filter((id) => !answered.includes(id));
      if (missing.length) {
        return provider === 'openai'
          ? `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${missing.join(', ')}`
          : `messages.${i + 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(', ')}`;
      }
    }
    if (provider === 'openai' && m.role === 'tool') {
      const previous = messages.slice(0, i).findLast((n) => n.role !== 'tool');
      if (!previous?.tool_calls?.some((c) => c.id === m.tool_call_id)) {
        return "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.";
      }
    }
    if (provider === 'anthropic' && m.role === 'user') {
      const previous = messages[i - 1];
      const ids = previous
        ? blocksOf(previous)
            .filter((b) => b.type === 'tool_use')
            .map((b) => b.id)
        : [];
      for (const block of blocksOf(m).filter((b) => b.type === 'tool_result')) {
        if (!ids.includes(block.tool_use_id)) return `messages.${i}.content: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${block.tool_use_id}`;
      }
    }
  }
  return null;
}

type PlannedCall = { name: string; input: string };
type Plan = { fail?: number; cut: boolean; hang: boolean; slowMs: number; words: string[]; calls: PlannedCall[] };

const CALL_DIRECTIVE = /\[\[call(\d+):([A-Za-z0-9_-]+):(\{.*?\})\]\]/g;

function plan(text: string, seenTags: Set<string>, rounds: { step: number; results: string[] }): Plan {
  const result: Plan = { cut: false, hang: false, slowMs: 0, words: [], calls: [] };
  for (const [, step, name, input] of text.matchAll(CALL_DIRECTIVE)) {
    if (Number(step) === rounds.step + 1) result.calls.push({ name: name!, input: input! });
  }
  text = text.replace(CALL_DIRECTIVE, '');
  for (const [, name, arg = ''] of text.matchAll(DIRECTIVE)) {
    const once = name!.endsWith('-once');
    const tagged = once ? `${name}:${arg}` : '';
    if (once) {
      if (seenTags.has(tagged)) continue;
      seenTags.add(tagged);
    }
    if (name === 'fail' || name === 'fail-once') result.fail = Number(arg.split(':')[0]);
    if (name === 'fail-at' && Number(arg.split(':')[0]) === rounds.step + 1) result.fail = Number(arg.split(':')[1]);
    if (name === 'cut' || name === 'cut-once') result.cut = true;
    if (name === 'hang' || name === 'hang-once') result.hang = true;
    if (name === 'slow') result.slowMs = Number(arg);
  }
  const clean = text.replace(DIRECTIVE, '').trim();
  const results = rounds.results.length ? ` | results: ${rounds.results.join(' ')}` : '';
  result.words = result.calls.length ? [] : (`Echo: ${clean}${results}`.match(/\S+\s*/g) ?? []);
  return result;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** base64 that the real APIs would take (they refuse anything else with a 400). */
function decodeBase64(data: unknown): Buffer {
  if (typeof data !== 'string' || data.length % 4 !== 0 || !BASE64.test(data)) throw new Error('invalid base64 data');
  return Buffer.from(data, 'base64');
}

function dataUrl(url: unknown): { mediaType: string; bytes: Buffer } {
  const match = typeof url === 'string' ? /^data:([^;,]+);base64,(.*)$/s.exec(url) : null;
  if (!match) throw new Error('expected a base64 data: URL');
  return { mediaType: match[1]!, bytes: decodeBase64(match[2]) };
}

type Block = {
  type: string;
  text?: string;
  image_url?: { url?: string };
  file?: { file_data?: string; filename?: string };
  source?: { type?: string; media_type?: string; data?: string };
};

/** The user turns' file parts as each provider reads them: OpenAI image_url/file parts, Anthropic image/document blocks; text parts after the first. */
function receivedFiles(provider: 'openai' | 'anthropic', body: Record<string, unknown>): ReceivedFile[] {
  const files: ReceivedFile[] = [];
  for (const message of (body.messages as WireMessage[]) ?? []) {
    if (message.role !== 'user' || !Array.isArray(message.content)) continue;
    const blocks = message.content as Block[];
    for (const block of blocks) {
      if (provider === 'openai' && block.type === 'image_url') {
        const { mediaType, bytes } = dataUrl(block.image_url?.url);
        files.push({ kind: 'image', mediaType, sha256: sha256(bytes), bytes: bytes.length });
      } else if (provider === 'openai' && block.type === 'file') {
        const { mediaType, bytes } = dataUrl(block.file?.file_data);
        if (!block.file?.filename) throw new Error('a file part needs its filename');
        files.push({ kind: 'pdf', mediaType, sha256: sha256(bytes), bytes: bytes.length });
      } else if (provider === 'anthropic' && (block.type === 'image' || block.type === 'document')) {
        if (block.source?.type !== 'base64' || !block.source.media_type) throw new Error(`${block.type}.source: expected a base64 source with its media_type`);
        const bytes = decodeBase64(block.source.data);
        if (block.type === 'image' && bytes.length > 5 * 1_048_576) throw new Error('image exceeds 5 MB maximum');
        files.push({ kind: block.type === 'image' ? 'image' : 'pdf', mediaType: block.source.media_type, sha256: sha256(bytes), bytes: bytes.length });
      } else if (block.type === 'text' && blocks.length > 1 && block.text?.startsWith('[')) {
        files.push({ kind: 'text', text: block.text });
      }
    }
  }
  return files;
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
}

function sendError(res: ServerResponse, provider: 'openai' | 'anthropic', status: number, detail?: string) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (status === 429) headers['retry-after'] = '1';
  const message = detail ?? `fake ${provider} error ${status}`;
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
  for (const [index, call] of p.calls.entries()) {
    // The id, type and name come with the first fragment of a call only, as OpenAI streams them.
    const id = `call_${randomUUID().replace(/-/g, '').slice(0, 24)}`;
    send({
      ...base,
      choices: [{ index: 0, delta: { tool_calls: [{ index, id, type: 'function', function: { name: call.name, arguments: '' } }] }, finish_reason: null }],
    });
    for (const fragment of fragments(call.input)) {
      if (p.slowMs) await sleep(p.slowMs);
      send({ ...base, choices: [{ index: 0, delta: { tool_calls: [{ index, function: { arguments: fragment } }] }, finish_reason: null }] });
    }
  }
  send({ ...base, choices: [{ index: 0, delta: {}, finish_reason: p.calls.length ? 'tool_calls' : 'stop' }] });
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
  for (const [i, call] of p.calls.entries()) {
    const index = i + 1;
    const id = `toolu_${randomUUID().replace(/-/g, '').slice(0, 24)}`;
    send('content_block_start', { type: 'content_block_start', index, content_block: { type: 'tool_use', id, name: call.name, input: {} } });
    for (const fragment of fragments(call.input)) {
      if (p.slowMs) await sleep(p.slowMs);
      send('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: fragment } });
    }
    send('content_block_stop', { type: 'content_block_stop', index });
  }
  const stopReason = p.calls.length ? 'tool_use' : 'end_turn';
  send('message_delta', {
    type: 'message_delta',
    delta: { stop_reason: stopReason, stop_sequence: null },
    usage: { output_tokens: p.words.length + p.calls.length },
  });
  send('message_stop', { type: 'message_stop' });
  res.end();
}

export async function startFakeProviders(): Promise<FakeProviders> {
  const requests: RecordedRequest[] = [];
  const holds: Hold[] = [];
  const seenTags = new Set<string>();
  const open = new Set<ServerResponse>();
  const server: Server = createServer(async (req, res) => {
    const provider = req.url?.startsWith('/openai/') ? 'openai' : req.url?.startsWith('/anthropic/') ? 'anthropic' : undefined;
    const known = (provider === 'openai' && req.url === '/openai/v1/chat/completions') || (provider === 'anthropic' && req.url === '/anthropic/v1/messages');
    if (!provider || !known || req.method !== 'POST') return void res.writeHead(404).end();
    open.add(res);
    res.on('close', () => open.delete(res));
    const body = await readJson(req);
    let files: ReceivedFile[];
    try {
      files = receivedFiles(provider, body);
    } catch (err) {
      return sendError(res, provider, 400, (err as Error).message);
    }
    const recorded: RecordedRequest = { provider, headers: req.headers, body, at: Date.now(), files };
    requests.push(recorded);
    const held = holds.findIndex((hold) => hold.matches(recorded));
    if (held >= 0) {
      const [hold] = holds.splice(held, 1);
      hold!.arrive(recorded);
      await hold!.released;
      if (res.destroyed) return;
    }
    const text = lastUserText(provider, body);
    const paired = pairingError(provider, body);
    if (paired) return sendError(res, provider, 400, paired);
    const p = plan(text, seenTags, toolRounds(provider, body));
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
    hold: (matches) => {
      let arrive!: (request: RecordedRequest) => void;
      let release!: () => void;
      const arrived = new Promise<RecordedRequest>((resolve) => (arrive = resolve));
      const released = new Promise<void>((resolve) => (release = resolve));
      holds.push({ matches, arrive, released });
      return { arrived, release };
    },
    close: async () => {
      for (const res of open) res.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
