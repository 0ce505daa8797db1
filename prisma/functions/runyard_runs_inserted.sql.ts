import { ACTIVE_STATUSES } from '../../shared/runs/lifecycle.js';
import { databaseFunction, sqlIn } from './databaseFunction.js';

/** Runs inserted (provisioned or started from the queue), once per statement: their account's active-run count, and open_runs from the start until their cleanup. */
export default databaseFunction(
  'runyard_runs_inserted',
  `CREATE OR REPLACE FUNCTION public.runyard_runs_inserted()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  INSERT INTO account_active_runs (account_id, slot, active)
  SELECT account_id, pg_backend_pid() % 16, count(*) FROM inserted_runs
  WHERE status IN ${sqlIn(ACTIVE_STATUSES)}
  GROUP BY account_id
  ORDER BY account_id
  ON CONFLICT (account_id, slot) DO UPDATE SET active = account_active_runs.active + EXCLUDED.active;
  INSERT INTO open_runs (run_id)
  SELECT id FROM inserted_runs WHERE status IN ${sqlIn(ACTIVE_STATUSES)}
  ON CONFLICT (run_id) DO NOTHING;
  RETURN NULL;
END
$function$;`,
  [
    `CREATE OR REPLACE TRIGGER runs_inserted AFTER INSERT ON runs REFERENCING NEW TABLE AS inserted_runs FOR EACH STATEMENT EXECUTE FUNCTION runyard_runs_inserted();`,
  ],
);
