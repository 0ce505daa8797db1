import type { Priority } from '../flow/priorities.js';
import { Batcher } from '../infra/batcher.js';
import { statement, type Sql } from '../infra/sql.js';
import type { Db, SqlTx } from '../infra/db.js';

/** Everything one run needs in Postgres before it is queued. */
export type ProvisionRequest = {
  accountId: string;
  runId: string;
  sessionId: string;
  chatId: string;
  model: string;
  system: string | null;
  maxOutputTokens: number | null;
  idempotencyKey: string | null;
  title: string | null;
  metadata: unknown;
  messages: { role: string; parts: unknown[] }[];
  tools: unknown[] | null;
  mcpServers: unknown[] | null;
  webhook: { url: string; events: string[] } | null;
  maxSteps: number;
  /** The W3C traceparent of the request that started the run (null when not traced). */
  traceparent: string | null;
  priority: Priority;
  /** The account key that sent the run (SPEC section 21: usage per key); null for an operator's. */
  sentByKeyId: string | null;
  key: { id: string; hash: string; prefix: string; scopes: string[]; expiresAt: Date };
};

// prisma/migrations/*_provision_runs_batched defines the function.
const PROVISION_RUNS = statement('provision_runs', `SELECT run_id::text FROM runyard_provision_runs($1::uuid, $2::int, $3::jsonb) AS run_id`);

async function provisionRuns(sql: Sql, maxActive: number, requests: ProvisionRequest[]): Promise<boolean[]> {
  const runs = requests.map((r, ord) => ({
    ord,
    session_id: r.sessionId,
    chat_id: r.chatId,
    run_id: r.runId,
    model: r.model,
    system: r.system,
    max_output_tokens: r.maxOutputTokens,
    idempotency_key: r.idempotencyKey,
    title: r.title,
    metadata: r.metadata,
    messages: r.messages,
    key_id: r.key.id,
    key_hash: r.key.hash,
    key_prefix: r.key.prefix,
    key_scopes: r.key.scopes,
    key_expires_at: r.key.expiresAt.toISOString(),
    tools: r.tools,
    mcp_servers: r.mcpServers,
    webhook: r.webhook,
    max_steps: r.maxSteps,
    traceparent: r.traceparent,
    priority: r.priority,
    sent_by_key_id: r.sentByKeyId,
  }));
  const rows = await sql.rows<{ run_id: string }>(PROVISION_RUNS, [requests[0]!.accountId, maxActive, JSON.stringify(runs)]);
  const provisioned = new Set(rows.map((row) => row.run_id));
  return requests.map((r) => provisioned.has(r.runId));
}

/**
 * Provisions runs (session, chat, messages, run, ephemeral key) in one SQL call per batch: the
 * POSTs of one account that arrive together share a transaction, under the account's lock, in
 * arrival order. An idle api provisions each POST at once.
 */
export class RunProvisioner {
  private readonly batcher: Batcher<ProvisionRequest, boolean>;

  constructor(sql: Sql, maxActivePerAccount: number, onBatch: (size: number) => void = () => {}) {
    this.batcher = new Batcher((requests) => provisionRuns(sql, maxActivePerAccount, requests), {
      maxBatch: 50,
      concurrency: 1,
      group: (r) => r.accountId,
      key: (r) => r.runId,
      onBatch,
    });
  }

  /** False when the account already has its maximum of queued and running runs. */
  provision(request: ProvisionRequest): Promise<boolean> {
    return this.batcher.submit(request);
  }
}

/**
 * The run a chat message starts: the chat's settings as the message left them, and the message's
 * own. A message queued behind an active run keeps the same object (queued_messages.run), from which
 * runyard_start_next_queued_message starts it later.
 */
export type ChatRun = {
  model: string;
  system: string | null;
  maxOutputTokens: number | null;
  tools?: unknown[] | null;
  maxSteps: number;
  mcpServers?: unknown[] | null;
  webhook?: unknown;
  metadata: unknown;
  priority: Priority;
  traceparent: string | null;
  sentByKeyId: string | null;
};

/**
 * Provisions a chat message's run (its session, the run, the user message) in the caller's
 * transaction: the message's id. Runs of POST /api/chat/runs are provisioned in batches by
 * RunProvisioner (one SQL function call), queued messages' runs by the promotion function.
 */
export async function provisionChatRun(
  tx: SqlTx,
  ids: { runId: string; sessionId: string; accountId: string; chatId: string },
  run: ChatRun,
  parts: unknown[],
): Promise<string> {
  await tx.$executeRaw`INSERT INTO sessions (id, account_id) VALUES (${ids.sessionId}::uuid, ${ids.accountId}::uuid)`;
  await tx.$executeRaw`
    INSERT INTO runs (id, account_id, session_id, chat_id, model, system, max_output_tokens, tools, max_steps, mcp_servers, webhook, metadata, priority, traceparent, sent_by_key_id)
    VALUES (${ids.runId}::uuid, ${ids.accountId}::uuid, ${ids.sessionId}::uuid, ${ids.chatId}::uuid, ${run.model}, ${run.system}, ${run.maxOutputTokens},
      ${run.tools?.length ? JSON.stringify(run.tools) : null}::jsonb, ${run.maxSteps},
      ${run.mcpServers?.length ? JSON.stringify(run.mcpServers) : null}::jsonb, ${run.webhook ? JSON.stringify(run.webhook) : null}::jsonb,
      ${run.metadata ? JSON.stringify(run.metadata) : null}::jsonb, ${run.priority}, ${run.traceparent}, ${run.sentByKeyId}::uuid)`;
  const [message] = await tx.$queryRaw<{ id: string }[]>`
    INSERT INTO messages (id, chat_id, run_id, role, parts) VALUES (gen_random_uuid()::text, ${ids.chatId}::uuid, ${ids.runId}::uuid, 'user', ${JSON.stringify(parts)}::jsonb)
    RETURNING id`;
  return message!.id;
}

/** Undoes a run's provisioning (its enqueue failed): its session goes, and by the schema's cascades the run, its messages and its key; a Prisma promise, for a batch transaction. */
export function deleteProvisionedSession(db: Db, sessionId: string) {
  return db.session.delete({ where: { id: sessionId } });
}
