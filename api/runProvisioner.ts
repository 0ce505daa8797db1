import type { Priority } from '../shared/flow/priorities.js';
import { Batcher } from '../shared/infra/batcher.js';
import { statement, type Sql } from '../shared/infra/sql.js';

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
