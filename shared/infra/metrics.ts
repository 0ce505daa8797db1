import client from 'prom-client';

/** The metrics of one process (api or worker), on a registry of its own. */
export function createMetrics(process: 'api' | 'worker') {
  const registry = new client.Registry();
  registry.setDefaultLabels({ process });
  // The event loop's delay sampled every 100 ms (prom-client's default, 10 ms, wakes an idle process a
  // hundred times a second): ten samples a second are plenty for the lag's percentiles between scrapes.
  client.collectDefaultMetrics({ register: registry, prefix: 'runyard_', eventLoopMonitoringPrecision: 100 });
  const registers = [registry];
  return {
    registry,
    runsStarted: new client.Counter({ name: 'runyard_runs_started_total', help: 'Runs accepted by the api (202)', labelNames: ['model'], registers }),
    filesUploaded: new client.Counter({ name: 'runyard_files_uploaded_total', help: 'Files stored by POST /api/files', registers }),
    attachmentBytesSent: new client.Counter({
      name: 'runyard_attachment_bytes_sent_total',
      help: 'Attachment bytes a worker read from the blob store into model requests',
      registers,
    }),
    chatMessages: new client.Counter({
      name: 'runyard_chat_messages_total',
      help: 'Messages sent to chats, by what became of them: started (a run at once), queued, interrupting (queued at the front), rejected (chat_busy)',
      labelNames: ['outcome'],
      registers,
    }),
    compactions: new client.Counter({
      name: 'runyard_compactions_total',
      help: 'Chat compactions made (SPEC section 13), by model',
      labelNames: ['model'],
      registers,
    }),
    compactionTokensSaved: new client.Counter({
      name: 'runyard_compaction_tokens_saved_total',
      help: 'Input tokens the first model call after a compaction did not send: the input before it minus the input after it, by model',
      labelNames: ['model'],
      registers,
    }),
    usageLimitRefusals: new client.Counter({
      name: 'runyard_usage_limit_refusals_total',
      help: 'Work refused because the account reached a spend limit (SPEC section 14), by limit kind (tokens, spendMicros) and where: start, message, tool_results, model_call',
      labelNames: ['kind', 'where'],
      registers,
    }),
    runsFinished: new client.Counter({
      name: 'runyard_runs_finished_total',
      help: 'Runs that reached a terminal state, by status',
      labelNames: ['status', 'model'],
      registers,
    }),
    attemptsStarted: new client.Counter({
      name: 'runyard_run_attempts_started_total',
      help: 'Run attempts started by workers',
      labelNames: ['model'],
      registers,
    }),
    retries: new client.Counter({
      name: 'runyard_run_retries_total',
      help: 'Attempts that failed with a retryable error and were scheduled again',
      labelNames: ['code'],
      registers,
    }),
    stalls: new client.Counter({ name: 'runyard_run_stalls_total', help: 'Jobs BullMQ found stalled (their worker stopped renewing the lock)', registers }),
    fenced: new client.Counter({ name: 'runyard_run_fenced_writes_total', help: 'Writes rejected because the attempt no longer owned the run', registers }),
    cleanupFailures: new client.Counter({ name: 'runyard_cleanup_failures_total', help: 'Failed tries of a run cleanup (each is retried)', registers }),
    sweepRecovered: new client.Counter({
      name: 'runyard_sweep_recovered_total',
      help: 'Runs the stale sweep re-queued, failed or cleaned up',
      labelNames: ['action'],
      registers,
    }),
    runDuration: new client.Histogram({
      name: 'runyard_run_duration_seconds',
      help: 'Attempt duration from start to terminal state',
      labelNames: ['status'],
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300],
      registers,
    }),
    timeToFirstToken: new client.Histogram({
      name: 'runyard_time_to_first_token_seconds',
      help: 'From attempt start to the first text delta',
      labelNames: ['model'],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
      registers,
    }),
    queueWait: new client.Histogram({
      name: 'runyard_queue_wait_seconds',
      help: 'From enqueue to a worker starting the attempt',
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
      registers,
    }),
    flowWait: new client.Histogram({
      name: 'runyard_flow_wait_seconds',
      help: 'How long a run waited in the fair scheduler for its account’s turn before it was released to the queues',
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
      registers,
    }),
    rateLimitWaits: new client.Counter({
      name: 'runyard_model_rate_limit_waits_total',
      help: 'Model calls that waited for fleet-wide capacity (MODEL_RATE_LIMITS), by reason: rpm, tpm or paused (a provider 429); or spend: other calls of the account hold what is left of its limits',
      labelNames: ['model', 'reason'],
      registers,
    }),
    rateLimitPauses: new client.Counter({
      name: 'runyard_model_rate_limit_pauses_total',
      help: 'Provider 429s with Retry-After that paused a model for the whole fleet',
      labelNames: ['model'],
      registers,
    }),
    retentionErased: new client.Counter({
      name: 'runyard_retention_erased_total',
      help: 'What retention erased (chats past their account’s retention, their runs, and uploads attached to no chat after a day)',
      labelNames: ['what'],
      registers,
    }),
    statementBatchSize: new client.Histogram({
      name: 'runyard_statement_batch_size',
      help: 'Runs in one batched write (claims, completions, provisioning, job adds)',
      labelNames: ['statement'],
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers,
    }),
    toolCalls: new client.Counter({
      name: 'runyard_tool_calls_total',
      help: 'Tool calls executed by workers, by kind (server) and outcome (output, error_result, http_4xx, http_5xx, timeout, connection, too_large, redirect, invalid_answer)',
      labelNames: ['kind', 'outcome'],
      registers,
    }),
    toolInputErrors: new client.Counter({
      name: 'runyard_tool_input_errors_total',
      help: 'Tool calls not executed because the model gave an input that is not JSON, names no tool, or does not match the schema',
      registers,
    }),
    toolCallDuration: new client.Histogram({
      name: 'runyard_tool_call_duration_seconds',
      help: 'Time from sending a tool call to its result, retries included',
      labelNames: ['kind'],
      buckets: [0.005, 0.025, 0.1, 0.5, 1, 5, 15, 30, 60, 120],
      registers,
    }),
    workspacesOpened: new client.Counter({
      name: 'runyard_workspaces_opened_total',
      help: 'Workspaces an attempt opened on a worker: created (made the first time) or opened (its copy, or materialised from the blob store)',
      labelNames: ['how'],
      registers,
    }),
    workspaceBytesPersisted: new client.Counter({
      name: 'runyard_workspace_bytes_persisted_total',
      help: 'Bytes of workspace archives written to the blob store (a version per call that changed files)',
      registers,
    }),
    webhookDeliveries: new client.Counter({
      name: 'runyard_webhook_deliveries_total',
      help: 'Webhook delivery attempts by outcome (delivered, retry, failed)',
      labelNames: ['outcome'],
      registers,
    }),
    webhookLatency: new client.Histogram({
      name: 'runyard_webhook_delivery_seconds',
      help: 'Time a webhook receiver took to answer one delivery',
      buckets: [0.005, 0.025, 0.1, 0.5, 1, 5, 10, 30],
      registers,
    }),
    activeStreams: new client.Gauge({ name: 'runyard_active_streams', help: 'SSE clients connected to this api instance', registers }),
    activeRuns: new client.Gauge({ name: 'runyard_active_runs', help: 'Runs this worker is executing now', registers }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
