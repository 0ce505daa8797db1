import { databaseFunction } from './databaseFunction.js';

/** Writes a run's webhook event (its payload built here) to the outbox in the transaction of the run's status change, for the events the run's webhook asks for. */
export default databaseFunction(
  'runyard_webhook_event',
  `CREATE OR REPLACE FUNCTION public.runyard_webhook_event()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
DECLARE
  event_type text := CASE NEW.status WHEN 'running' THEN 'run.started' ELSE 'run.' || NEW.status::text END;
  pending jsonb;
BEGIN
  IF NEW.status = 'queued' OR NOT (COALESCE(NEW.webhook->'events', '[]'::jsonb) ? event_type) THEN
    RETURN NULL;
  END IF;
  IF NEW.status = 'requires_action' THEN
    -- The calls the run waits on, as GET /api/chat/runs/{runId} shows them (shared/steps.ts pendingCalls).
    SELECT COALESCE(jsonb_agg(jsonb_build_object('toolCallId', c.value->>'toolCallId', 'toolName', c.value->>'toolName', 'input', c.value->'input',
             'kind', CASE WHEN c.value->>'kind' = 'client' THEN 'result' ELSE 'approval' END) ORDER BY c.ord), '[]'::jsonb)
      INTO pending
      FROM run_steps s, jsonb_array_elements(s.tool_calls) WITH ORDINALITY AS c(value, ord)
     WHERE s.run_id = NEW.id AND s.episode = NEW.episode
       AND s.step = (SELECT max(step) FROM run_steps WHERE run_id = NEW.id AND episode = NEW.episode)
       AND c.value->>'inputError' IS NULL AND NOT (s.results ? (c.value->>'toolCallId'))
       AND (c.value->>'kind' = 'client' OR (COALESCE((c.value->>'needsApproval')::boolean, false) AND NOT (s.approvals ? (c.value->>'toolCallId'))));
  END IF;
  INSERT INTO webhook_events (id, run_id, type, payload)
  VALUES (gen_random_uuid(), NEW.id, event_type, jsonb_build_object(
    'type', event_type,
    'runId', NEW.id,
    'chatId', NEW.chat_id,
    'sessionId', NEW.session_id,
    'status', NEW.status,
    'attempt', NEW.attempt,
    'usage', NEW.usage,
    'costMicros', NEW.cost_micros,
    'error', CASE WHEN NEW.error_code IS NULL THEN NULL
             ELSE jsonb_build_object('code', NEW.error_code, 'message', COALESCE(NEW.error_message, ''), 'retryable', COALESCE(NEW.error_retryable, false)) END,
    'occurredAt', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
  ) || CASE WHEN pending IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('pendingToolCalls', pending) END
    || CASE WHEN NEW.queued_message_id IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('queuedMessageId', NEW.queued_message_id) END);
  RETURN NULL;
END
$function$;`,
  [
    `CREATE OR REPLACE TRIGGER runs_webhook_event AFTER UPDATE OF status ON runs FOR EACH ROW WHEN (new.webhook IS NOT NULL AND old.status IS DISTINCT FROM new.status) EXECUTE FUNCTION runyard_webhook_event();`,
  ],
);
