-- Provisioning inserts a batch of runs in one statement. The two row triggers on insert (the
-- account's active count, open_runs) ran two PL/pgSQL calls and two single-row upserts per run;
-- one statement-level trigger does the same with one call and two set-based statements per batch.
-- Updates and deletes keep their row triggers: those fire only for the rows whose activeness
-- changes, which a statement-level trigger (no WHEN, no column list) cannot filter.
CREATE FUNCTION runyard_runs_inserted() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  INSERT INTO account_active_runs (account_id, slot, active)
  SELECT account_id, pg_backend_pid() % 16, count(*) FROM inserted_runs
  WHERE status IN ('queued', 'running')
  GROUP BY account_id
  ORDER BY account_id
  ON CONFLICT (account_id, slot) DO UPDATE SET active = account_active_runs.active + EXCLUDED.active;
  INSERT INTO open_runs (run_id)
  SELECT id FROM inserted_runs WHERE status IN ('queued', 'running')
  ON CONFLICT (run_id) DO NOTHING;
  RETURN NULL;
END
$$;

-- Swapped in one transaction (migrations run in one), so no insert is counted twice or missed.
DROP TRIGGER runs_count_active_insert ON runs;
DROP TRIGGER runs_open_insert ON runs;

CREATE TRIGGER runs_inserted AFTER INSERT ON runs
REFERENCING NEW TABLE AS inserted_runs
FOR EACH STATEMENT EXECUTE FUNCTION runyard_runs_inserted();
