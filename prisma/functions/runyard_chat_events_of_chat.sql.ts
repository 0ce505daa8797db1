import { databaseFunction } from './databaseFunction.js';

/** A chat's title, archive or deletion as a live event (SPEC section 19), written only while someone watches the chat or its account. */
export default databaseFunction(
  'runyard_chat_events_of_chat',
  `CREATE OR REPLACE FUNCTION public.runyard_chat_events_of_chat()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  IF TG_OP = 'DELETE' THEN
    IF runyard_chat_watched(OLD.id, OLD.account_id) THEN
      INSERT INTO chat_event_outbox (chat_id, account_id, kind) VALUES (OLD.id, OLD.account_id, 'chat.deleted');
    END IF;
    RETURN NULL;
  END IF;
  IF NOT runyard_chat_watched(NEW.id, NEW.account_id) THEN RETURN NULL; END IF;
  IF TG_OP = 'INSERT' THEN
    INSERT INTO chat_event_outbox (chat_id, account_id, kind) VALUES (NEW.id, NEW.account_id, 'chat.created');
    RETURN NULL;
  END IF;
  IF OLD.title IS DISTINCT FROM NEW.title THEN
    INSERT INTO chat_event_outbox (chat_id, account_id, kind) VALUES (NEW.id, NEW.account_id, 'chat.title');
  END IF;
  IF OLD.archived_at IS NULL AND NEW.archived_at IS NOT NULL THEN
    INSERT INTO chat_event_outbox (chat_id, account_id, kind) VALUES (NEW.id, NEW.account_id, 'chat.archived');
  END IF;
  RETURN NULL;
END
$function$;`,
  [
    `CREATE OR REPLACE TRIGGER chats_chat_events AFTER INSERT OR DELETE OR UPDATE OF title, archived_at ON chats FOR EACH ROW EXECUTE FUNCTION runyard_chat_events_of_chat();`,
  ],
);
