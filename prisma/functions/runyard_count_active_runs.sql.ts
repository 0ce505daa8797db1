import { ACTIVE_STATUSES } from '../../shared/runs/lifecycle.js';
import { databaseFunction, sqlIn, sqlStatusArray } from './databaseFunction.js';

/** Keeps the account's active-run count (account_active_runs, in slots) as runs enter and leave the active statuses: ACCOUNT_MAX_ACTIVE_RUNS is read from it. */
export default databaseFunction(
  'runyard_count_active_runs',
  `CREATE OR REPLACE FUNCTION public.runyard_count_active_runs()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
DECLARE
  was_active boolean := TG_OP <> 'INSERT' AND OLD.status IN ${sqlIn(ACTIVE_STATUSES)};
  is_active boolean := TG_OP <> 'DELETE' AND NEW.status IN ${sqlIn(ACTIVE_STATUSES)};
BEGIN
  IF was_active AND is_active AND OLD.account_id = NEW.account_id THEN
    RETURN NULL;
  END IF;
  -- A run deleted with its account needs no count (the account's slots are deleted with it).
  IF was_active AND (TG_OP = 'UPDATE' OR EXISTS (SELECT 1 FROM accounts WHERE id = OLD.account_id)) THEN
    INSERT INTO account_active_runs (account_id, slot, active) VALUES (OLD.account_id, pg_backend_pid() % 16, -1)
    ON CONFLICT (account_id, slot) DO UPDATE SET active = account_active_runs.active - 1;
  END IF;
  IF is_active THEN
    INSERT INTO account_active_runs (account_id, slot, active) VALUES (NEW.account_id, pg_backend_pid() % 16, 1)
    ON CONFLICT (account_id, slot) DO UPDATE SET active = account_active_runs.active + 1;
  END IF;
  RETURN NULL;
END
$function$;`,
  [
    `CREATE OR REPLACE TRIGGER runs_count_active_delete AFTER DELETE ON runs FOR EACH ROW WHEN (old.status = ANY (${sqlStatusArray(ACTIVE_STATUSES)})) EXECUTE FUNCTION runyard_count_active_runs();`,
    `CREATE OR REPLACE TRIGGER runs_count_active_update AFTER UPDATE OF status, account_id ON runs FOR EACH ROW WHEN ((old.status = ANY (${sqlStatusArray(ACTIVE_STATUSES)})) IS DISTINCT FROM (new.status = ANY (${sqlStatusArray(ACTIVE_STATUSES)})) OR old.account_id IS DISTINCT FROM new.account_id) EXECUTE FUNCTION runyard_count_active_runs();`,
  ],
);
