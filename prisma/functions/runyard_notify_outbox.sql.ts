import { databaseFunction } from './databaseFunction.js';

/** Wakes the workers' outbox dispatchers (LISTEN runyard_outbox) when a row is added to one of the outboxes. */
export default databaseFunction(
  'runyard_notify_outbox',
  `CREATE OR REPLACE FUNCTION public.runyard_notify_outbox()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  PERFORM pg_notify('runyard_outbox', TG_TABLE_NAME);
  RETURN NULL;
END
$function$;`,
  [
    `CREATE OR REPLACE TRIGGER chat_event_outbox_notify AFTER INSERT ON chat_event_outbox FOR EACH STATEMENT EXECUTE FUNCTION runyard_notify_outbox();`,
    `CREATE OR REPLACE TRIGGER chat_title_jobs_notify AFTER INSERT ON chat_title_jobs FOR EACH STATEMENT EXECUTE FUNCTION runyard_notify_outbox();`,
    `CREATE OR REPLACE TRIGGER pending_run_jobs_notify AFTER INSERT ON pending_run_jobs FOR EACH STATEMENT EXECUTE FUNCTION runyard_notify_outbox();`,
    `CREATE OR REPLACE TRIGGER webhook_events_notify AFTER INSERT ON webhook_events FOR EACH STATEMENT EXECUTE FUNCTION runyard_notify_outbox();`,
  ],
);
