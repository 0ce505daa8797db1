import { databaseFunction } from './databaseFunction.js';

/** Counts queued messages towards the account's active runs, as they are queued and leave the queue. */
export default databaseFunction(
  'runyard_count_queued_messages',
  `CREATE OR REPLACE FUNCTION public.runyard_count_queued_messages()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO account_active_runs (account_id, slot, active) VALUES (NEW.account_id, pg_backend_pid() % 16, 1)
    ON CONFLICT (account_id, slot) DO UPDATE SET active = account_active_runs.active + 1;
  ELSIF EXISTS (SELECT 1 FROM accounts WHERE id = OLD.account_id) THEN
    INSERT INTO account_active_runs (account_id, slot, active) VALUES (OLD.account_id, pg_backend_pid() % 16, -1)
    ON CONFLICT (account_id, slot) DO UPDATE SET active = account_active_runs.active - 1;
  END IF;
  RETURN NULL;
END
$function$;`,
  [
    `CREATE OR REPLACE TRIGGER queued_messages_count_active AFTER INSERT OR DELETE ON queued_messages FOR EACH ROW EXECUTE FUNCTION runyard_count_queued_messages();`,
  ],
);
