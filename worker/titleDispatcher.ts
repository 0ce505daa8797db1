import { chargeOf, emptyUsage, parseModelId, type Usage } from '../shared/agent/models.js';
import { chargeCte } from '../shared/accounts/usageLimits.js';
import type { Config } from '../shared/infra/config.js';
import type { Logger } from '../shared/infra/logger.js';
import { statement, type Sql } from '../shared/infra/sql.js';
import { OutboxPoller } from './outboxPoller.js';
import type { ProviderRegistry } from './providers/index.js';

const BATCH = 8;
const MAX_TRIES = 3;
const TITLE_MAX_CHARS = 80;
/** A taken job is leased for this long: a worker that dies with it leaves it to another after that. */
const LEASE_SECONDS = 60;
const CALL_TIMEOUT_MS = 30_000;

const TAKE_JOBS = statement(
  'take_title_jobs',
  `WITH due AS (
     SELECT chat_id FROM chat_title_jobs WHERE next_attempt_at <= now() ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
   )
   UPDATE chat_title_jobs j SET attempts = j.attempts + 1, next_attempt_at = now() + make_interval(secs => ${LEASE_SECONDS})
   FROM due WHERE j.chat_id = due.chat_id
   RETURNING j.chat_id::text, j.attempts, j.replace`,
);

/** CHAT_TITLES=false: the jobs the trigger still writes are dropped, no model called. */
const DROP_JOBS = statement(
  'drop_title_jobs',
  `DELETE FROM chat_title_jobs WHERE chat_id IN (SELECT chat_id FROM chat_title_jobs ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING chat_id`,
);

/** The chat's account, its model (its settings', else its first run's) and its first exchange still in its history. */
const FIRST_EXCHANGE = statement(
  'chat_first_exchange',
  `SELECT c.account_id::text, COALESCE(c.settings->>'model', (SELECT r.model FROM runs r WHERE r.chat_id = c.id ORDER BY r.created_at LIMIT 1)) AS model,
     (SELECT m.parts FROM messages m WHERE m.chat_id = c.id AND m.role = 'user' AND m.discarded_at IS NULL ORDER BY m.seq LIMIT 1) AS question,
     (SELECT m.parts FROM messages m WHERE m.chat_id = c.id AND m.role = 'assistant' AND m.discarded_at IS NULL ORDER BY m.seq LIMIT 1) AS answer
   FROM chats c WHERE c.id = $1::uuid`,
);

/** The call recorded for the usage reports (source `title`), when it used anything: $1 chat, $3 account, $5 cost, $6 model, $7 usage. */
const RECORD_CALL = `recorded AS (
     INSERT INTO title_calls (chat_id, account_id, model, usage, cost_micros)
     SELECT $1::uuid, $3::uuid, $6, $7::jsonb, $5::bigint WHERE $4::bigint > 0
   )`;

/** Sets the title (unless a person set one meanwhile), charges and records the call, and closes the job: one statement. */
const SET_TITLE = statement(
  'set_chat_title',
  `WITH job AS (
     DELETE FROM chat_title_jobs WHERE chat_id = $1::uuid RETURNING chat_id, replace
   ), titled AS (
     UPDATE chats c SET title = $2 FROM job WHERE c.id = job.chat_id AND NOT c.title_manual AND (job.replace OR c.title IS NULL) RETURNING c.id
   ), ${chargeCte('charged', 'SELECT $3::uuid AS account_id, $4::bigint AS tokens, $5::bigint AS spend_micros')}, ${RECORD_CALL}
   SELECT (SELECT count(*) FROM titled)::int AS titled`,
);

/** A failed try: again later, or (its last) the job is dropped; what the call used is charged and recorded either way. */
const FAIL_JOB = statement(
  'fail_title_job',
  `WITH job AS (
     UPDATE chat_title_jobs SET next_attempt_at = now() + make_interval(secs => $2::int) WHERE chat_id = $1::uuid AND attempts < ${MAX_TRIES} RETURNING chat_id
   ), dropped AS (
     DELETE FROM chat_title_jobs WHERE chat_id = $1::uuid AND attempts >= ${MAX_TRIES}
   ), ${chargeCte('charged', 'SELECT $3::uuid AS account_id, $4::bigint AS tokens, $5::bigint AS spend_micros')}, ${RECORD_CALL}
   SELECT 1`,
);

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
export class TitleDispatcher {
  private readonly poller: OutboxPoller;

  constructor(private readonly deps: { sql: Sql; config: Config; logger: Logger; providers: ProviderRegistry }) {
    this.poller = new OutboxPoller({
      what: 'titling chats',
      batch: BATCH,
      intervalMs: Math.max(1_000, deps.config.CHAT_PROMOTION_POLL_MS * 5),
      logger: deps.logger,
      takeBatch: () => this.titleDue(),
    });
  }

  start(): void {
    this.poller.start();
  }

  wake(): void {
    this.poller.wake();
  }

  stop(): Promise<void> {
    return this.poller.stop();
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
