import { ACTIVE_STATUSES } from '../../shared/runs/lifecycle.js';
import { databaseFunction, sqlStatusArray } from './databaseFunction.js';

/** A run that becomes active again (replay, continue) is open again (open_runs): the sweep reads only open runs. */
export default databaseFunction(
  'runyard_open_run',
  `CREATE OR REPLACE FUNCTION public.runyard_open_run()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  INSERT INTO open_runs (run_id) VALUES (NEW.id) ON CONFLICT (run_id) DO NOTHING;
  RETURN NULL;
END
$function$;`,
  [
    `CREATE OR REPLACE TRIGGER runs_open_reopen AFTER UPDATE OF status ON runs FOR EACH ROW WHEN ((old.status <> ALL (${sqlStatusArray(ACTIVE_STATUSES)})) AND (new.status = ANY (${sqlStatusArray(ACTIVE_STATUSES)}))) EXECUTE FUNCTION runyard_open_run();`,
  ],
);
