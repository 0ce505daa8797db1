import { chargeOf, emptyUsage, parseModelId, type Usage } from '../../shared/agent/models.js';
import type { Config } from '../../shared/infra/config.js';
import type { Logger } from '../../shared/infra/logger.js';
import type { Sql } from '../../shared/infra/sql.js';
import { DROP_JOBS, FAIL_JOB, FIRST_EXCHANGE, MAX_TRIES, SET_TITLE, TAKE_JOBS } from '../../shared/chats/titleJobs.js';
import { OutboxDispatcher } from './outboxPoller.js';
import type { ProviderRegistry } from '../providers/index.js';

const BATCH = 8;
const TITLE_MAX_CHARS = 80;
const CALL_TIMEOUT_MS = 30_000;

type Job = { chat_id: string; attempts: number; replace: boolean };
type Part = { type: string; text?: string };

const textOf = (parts: Part[] | null) =>
  (parts ?? [])
    .filter((part) => part.type === 'text' && typeof part.text === 'string')
    .map((part) => part.text)
    .join(' ')
    .trim();

/** The model's answer as a title: its first line, without quotes or a "Title:" label, at most 80 characters. */
export function cleanTitle(raw: string): string {
  const line =
    raw
      .split('\n')
      .map((text) => text.trim())
      .find(Boolean) ?? '';
  const bare = line
    .replace(/^title\s*:\s*/i, '')
    .replace(/^["'“”‘’`*#\s]+|["'“”‘’`*\s]+$/g, '')
    .replace(/\s+/g, ' ');
  return bare.length <= TITLE_MAX_CHARS ? bare : `${bare.slice(0, TITLE_MAX_CHARS - 1).trimEnd()}…`;
}

/**
 * Titles chats (SPEC section 19): takes the jobs the completion of a chat's first run wrote (or POST
 * /api/chats/{chatId}/title), calls TITLE_MODEL (default: the chat's model) once on the first
 * exchange, and sets a title of at most 80 characters — unless a person named the chat meanwhile.
 * The call is charged to the account like any model call. A failed call is tried again twice, then
 * given up: it never touches a run. Woken by the outbox notification, polled as a backstop.
 */
export class TitleDispatcher extends OutboxDispatcher {
  constructor(private readonly deps: { sql: Sql; config: Config; logger: Logger; providers: ProviderRegistry }) {
    super({ what: 'titling chats', batch: BATCH, intervalMs: Math.max(1_000, deps.config.CHAT_PROMOTION_POLL_MS * 5), logger: deps.logger });
  }

  protected takeBatch(): Promise<number> {
    return this.titleDue();
  }

  async titleDue(): Promise<number> {
    if (!this.deps.config.CHAT_TITLES) return this.deps.sql.rows(DROP_JOBS, [BATCH]).then((rows) => rows.length);
    const jobs = await this.deps.sql.rows<Job>(TAKE_JOBS, [BATCH]);
    await Promise.all(jobs.map((job) => this.title(job)));
    return jobs.length;
  }

  private async title(job: Job): Promise<void> {
    const { sql, config, logger, providers } = this.deps;
    const [chat] = await sql.rows<{ account_id: string; model: string | null; question: Part[] | null; answer: Part[] | null }>(FIRST_EXCHANGE, [job.chat_id]);
    if (!chat) return;
    const modelId = config.TITLE_MODEL ?? chat.model ?? config.DEFAULT_MODEL;
    const model = parseModelId(modelId);
    let usage: Usage = emptyUsage();
    try {
      const question = textOf(chat.question);
      if (!model) throw new Error(`unknown model ${modelId}`);
      if (!question) throw new Error('the chat has no user message to title');
      const answer = textOf(chat.answer).slice(0, 2_000);
      let text = '';
      const result = await providers(model.provider).stream(
        {
          model,
          system:
            'Reply with a short title (at most 8 words, no quotes) for a conversation that starts with the user message below.' +
            (answer ? ` The assistant answered: ${answer}` : ''),
          messages: [{ role: 'user', content: question.slice(0, 4_000) }],
          tools: [],
          maxOutputTokens: 30,
          signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
        },
        { text: (delta) => (text += delta), toolInputStart: () => {}, toolInputDelta: () => {} },
      );
      usage = result.usage;
      const title = cleanTitle(text);
      if (!title) throw new Error('the model answered no title');
      const charge = chargeOf(modelId, usage);
      const [row] = await sql.rows<{ titled: number }>(SET_TITLE, [
        job.chat_id,
        title,
        chat.account_id,
        charge.tokens,
        charge.spendMicros?.toString() ?? null,
        modelId,
        JSON.stringify(usage),
      ]);
      logger.info('chat titled', { chatId: job.chat_id, model: modelId, titled: row?.titled === 1 });
    } catch (err) {
      const charge = chargeOf(modelId, usage);
      await sql
        .rows(FAIL_JOB, [job.chat_id, 5 * job.attempts, chat.account_id, charge.tokens, charge.spendMicros?.toString() ?? null, modelId, JSON.stringify(usage)])
        .catch((failErr: Error) => logger.warn('could not record a failed title call', { error: failErr.message }));
      logger.warn('could not title a chat', {
        chatId: job.chat_id,
        model: modelId,
        attempt: job.attempts,
        final: job.attempts >= MAX_TRIES,
        error: (err as Error).message,
      });
    }
  }
}
