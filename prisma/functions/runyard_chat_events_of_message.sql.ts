import { databaseFunction } from './databaseFunction.js';

/** Messages added to or discarded from a chat's history as a live event, while watched. */
export default databaseFunction(
  'runyard_chat_events_of_message',
  `CREATE OR REPLACE FUNCTION public.runyard_chat_events_of_message()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
DECLARE
  account uuid;
BEGIN
  IF TG_OP = 'UPDATE' AND (OLD.discarded_at IS NOT NULL OR NEW.discarded_at IS NULL) THEN RETURN NULL; END IF;
  IF NOT runyard_chat_watched(NEW.chat_id, NULL) THEN RETURN NULL; END IF;
  SELECT c.account_id INTO account FROM chats c WHERE c.id = NEW.chat_id;
  INSERT INTO chat_event_outbox (chat_id, account_id, kind, payload)
    VALUES (NEW.chat_id, account, 'chat.messages',
      CASE WHEN TG_OP = 'INSERT' THEN jsonb_build_object('added', jsonb_build_array(NEW.id), 'discarded', '[]'::jsonb)
      ELSE jsonb_build_object('added', '[]'::jsonb, 'discarded', jsonb_build_array(NEW.id)) END);
  RETURN NULL;
END
$function$;`,
  [
    `CREATE OR REPLACE TRIGGER messages_chat_events AFTER INSERT OR UPDATE OF discarded_at ON messages FOR EACH ROW EXECUTE FUNCTION runyard_chat_events_of_message();`,
  ],
);
