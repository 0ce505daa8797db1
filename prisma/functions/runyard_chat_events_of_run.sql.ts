import { databaseFunction } from './databaseFunction.js';

/** A chat's status (a run started, parked or ended) as a live event, while watched. */
export default databaseFunction(
  'runyard_chat_events_of_run',
  `CREATE OR REPLACE FUNCTION public.runyard_chat_events_of_run()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  IF NEW.chat_id IS NULL OR (TG_OP = 'UPDATE' AND OLD.status = NEW.status) THEN RETURN NULL; END IF;
  IF TG_OP = 'UPDATE' AND OLD.status = 'queued' AND NEW.status = 'running' THEN RETURN NULL; END IF;
  IF NOT runyard_chat_watched(NEW.chat_id, NEW.account_id) THEN RETURN NULL; END IF;
  INSERT INTO chat_event_outbox (chat_id, account_id, kind, payload)
    VALUES (NEW.chat_id, NEW.account_id, 'chat.status', jsonb_build_object('runId', NEW.id, 'runStatus', NEW.status));
  IF NEW.status = 'requires_action' OR (TG_OP = 'UPDATE' AND OLD.status = 'requires_action') THEN
    INSERT INTO chat_event_outbox (chat_id, account_id, kind, payload)
      VALUES (NEW.chat_id, NEW.account_id, 'chat.action_required', jsonb_build_object('runId', NEW.id));
  END IF;
  RETURN NULL;
END
$function$;`,
  [`CREATE OR REPLACE TRIGGER runs_chat_events AFTER INSERT OR UPDATE OF status ON runs FOR EACH ROW EXECUTE FUNCTION runyard_chat_events_of_run();`],
);
