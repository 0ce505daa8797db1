-- A run is open from the moment it is provisioned until the cleanup of its current episode has
-- happened. The sweep finds the runs it must look at here (runs that may have stalled, and ended
-- runs whose cleanup was missed) instead of through indexes on runs.status: every update of a run
-- changes its status, and no index naming status means those updates can be HOT (no index writes).
CREATE TABLE "open_runs" (
    "run_id" UUID NOT NULL,

    CONSTRAINT "open_runs_pkey" PRIMARY KEY ("run_id")
);

ALTER TABLE "open_runs" ADD CONSTRAINT "open_runs_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "runs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- A run opens when it is created or replayed, whoever writes it; its cleanup (shared/cleanup.ts)
-- closes it in the same statement.
CREATE FUNCTION runyard_open_run() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  INSERT INTO open_runs (run_id) VALUES (NEW.id) ON CONFLICT (run_id) DO NOTHING;
  RETURN NULL;
END
$$;

LOCK TABLE runs IN SHARE ROW EXCLUSIVE MODE;

INSERT INTO open_runs (run_id)
SELECT r.id FROM runs r
WHERE r.status IN ('queued', 'running')
   OR NOT EXISTS (SELECT 1 FROM cleanup_records c WHERE c.run_id = r.id AND c.episode = r.episode);

CREATE TRIGGER runs_open_insert AFTER INSERT ON runs
FOR EACH ROW WHEN (NEW.status IN ('queued', 'running')) EXECUTE FUNCTION runyard_open_run();

CREATE TRIGGER runs_open_reopen AFTER UPDATE OF status ON runs
FOR EACH ROW WHEN (OLD.status NOT IN ('queued', 'running') AND NEW.status IN ('queued', 'running'))
EXECUTE FUNCTION runyard_open_run();

DROP INDEX "runs_account_id_status_idx";
DROP INDEX "runs_status_heartbeat_at_idx";

-- Room on each page for a run's two updates to stay on it (a HOT update needs free space there).
ALTER TABLE "runs" SET (fillfactor = 80);

-- The operators' "replay failed runs since ..." reads the failed episodes from here.
CREATE INDEX "cleanup_records_reason_created_at_idx" ON "cleanup_records"("reason", "created_at");
