import { databaseFunction } from './databaseFunction.js';

/** A change of a chat's queue as a live event, while watched. */
export default databaseFunction(
  'runyard_chat_events_of_queue',
  `CREATE OR REPLACE FUNCTION public.runyard_chat_events_of_queue()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
DECLARE
  q queued_messages;
BEGIN
  q := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  IF NOT runyard_chat_watched(q.chat_id, NULL) THEN RETURN NULL; END IF;
  INSERT INTO chat_event_outbox (chat_id, account_id, kind) VALUES (q.chat_id, q.account_id, 'chat.queue');
  RETURN NULL;
END
$function$;`,
  [
    `CREATE OR REPLACE TRIGGER queued_messages_chat_events AFTER INSERT OR DELETE OR UPDATE ON queued_messages FOR EACH ROW EXECUTE FUNCTION runyard_chat_events_of_queue();`,
  ],
);
