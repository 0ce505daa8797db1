import { ACTIVE_STATUSES, DEFAULT_MAX_STEPS } from '../../shared/runs/lifecycle.js';
import { databaseFunction, sqlIn } from './databaseFunction.js';

/** Starts a chat's first queued message as its next run (its session, run and user message, and a pending job the promotion dispatcher enqueues with a minted key) unless the chat is archived or busy or its account over a limit: the run's id, or null. */
export default databaseFunction(
  'runyard_start_next_queued_message',
  `CREATE OR REPLACE FUNCTION public.runyard_start_next_queued_message(p_chat_id uuid)
 RETURNS uuid
 LANGUAGE plpgsql
AS $function$
DECLARE
  chat record;
  next record;
  new_session uuid := gen_random_uuid();
  new_run uuid := gen_random_uuid();
BEGIN
  SELECT id, account_id, archived_at INTO chat FROM chats WHERE id = p_chat_id FOR UPDATE;
  IF chat.id IS NULL OR chat.archived_at IS NOT NULL THEN
    RETURN NULL;
  END IF;
  IF EXISTS (SELECT 1 FROM runs WHERE chat_id = p_chat_id AND status IN ${sqlIn(ACTIVE_STATUSES)}) THEN
    RETURN NULL;
  END IF;
  SELECT q.id, q.parts, q.run INTO next FROM queued_messages q WHERE q.chat_id = p_chat_id ORDER BY q.position, q.seq LIMIT 1;
  IF next.id IS NULL OR runyard_usage_limit_reached(chat.account_id) IS NOT NULL THEN
    RETURN NULL;
  END IF;
  DELETE FROM queued_messages WHERE id = next.id;
  INSERT INTO sessions (id, account_id) VALUES (new_session, chat.account_id);
  INSERT INTO runs (id, account_id, session_id, chat_id, model, system, max_output_tokens, tools, max_steps, mcp_servers, webhook, queued_message_id, metadata, priority, traceparent, sent_by_key_id)
  VALUES (new_run, chat.account_id, new_session, p_chat_id, next.run->>'model', next.run->>'system', (next.run->>'maxOutputTokens')::int,
    NULLIF(next.run->'tools', 'null'::jsonb), COALESCE((next.run->>'maxSteps')::int, ${DEFAULT_MAX_STEPS}), NULLIF(next.run->'mcpServers', 'null'::jsonb),
    NULLIF(next.run->'webhook', 'null'::jsonb), next.id, NULLIF(next.run->'metadata', 'null'::jsonb), COALESCE(next.run->>'priority', 'normal'),
    next.run->>'traceparent', (next.run->>'sentByKeyId')::uuid);
  INSERT INTO messages (id, chat_id, run_id, role, parts) VALUES (gen_random_uuid()::text, p_chat_id, new_run, 'user', next.parts);
  INSERT INTO pending_run_jobs (run_id) VALUES (new_run);
  UPDATE chats SET last_activity_at = now() WHERE id = p_chat_id;
  RETURN new_run;
END
$function$;`,
);
