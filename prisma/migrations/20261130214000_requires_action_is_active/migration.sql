-- A run parked in requires_action is still active (shared/runLifecycle.ts ACTIVE_STATUSES): it holds a
-- slot of the account's active-run limit and stays in open_runs. The triggers and functions that
-- keep both are redefined with the new list (the enum value was added by the previous migration:
-- a new enum value cannot be used in the transaction that adds it).
CREATE OR REPLACE FUNCTION runyard_count_active_runs() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  was_active boolean := TG_OP <> 'INSERT' AND OLD.status IN ('queued', 'running', 'requires_action');
  is_active boolean := TG_OP <> 'DELETE' AND NEW.status IN ('queued', 'running', 'requires_action');
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
$$;

CREATE OR REPLACE FUNCTION runyard_runs_inserted() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  INSERT INTO account_active_runs (account_id, slot, active)
  SELECT account_id, pg_backend_pid() % 16, count(*) FROM inserted_runs
  WHERE status IN ('queued', 'running', 'requires_action')
  GROUP BY account_id
  ORDER BY account_id
  ON CONFLICT (account_id, slot) DO UPDATE SET active = account_active_runs.active + EXCLUDED.active;
  INSERT INTO open_runs (run_id)
  SELECT id FROM inserted_runs WHERE status IN ('queued', 'running', 'requires_action')
  ON CONFLICT (run_id) DO NOTHING;
  RETURN NULL;
END
$$;

DROP TRIGGER runs_count_active_update ON runs;
CREATE TRIGGER runs_count_active_update AFTER UPDATE OF status, account_id ON runs
FOR EACH ROW WHEN ((OLD.status IN ('queued', 'running', 'requires_action')) IS DISTINCT FROM (NEW.status IN ('queued', 'running', 'requires_action')) OR OLD.account_id IS DISTINCT FROM NEW.account_id)
EXECUTE FUNCTION runyard_count_active_runs();

DROP TRIGGER runs_count_active_delete ON runs;
CREATE TRIGGER runs_count_active_delete AFTER DELETE ON runs
FOR EACH ROW WHEN (OLD.status IN ('queued', 'running', 'requires_action')) EXECUTE FUNCTION runyard_count_active_runs();

DROP TRIGGER runs_open_reopen ON runs;
CREATE TRIGGER runs_open_reopen AFTER UPDATE OF status ON runs
FOR EACH ROW WHEN (OLD.status NOT IN ('queued', 'running', 'requires_action') AND NEW.status IN ('queued', 'running', 'requires_action'))
EXECUTE FUNCTION runyard_open_run();
