-- Outboxes wake their workers (SPEC section 22): a NOTIFY on runyard_outbox, delivered when the
-- transaction that wrote the rows commits, names the table; the workers' pollers are the backstop.
CREATE OR REPLACE FUNCTION runyard_notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('runyard_outbox', TG_TABLE_NAME);
  RETURN NULL;
END
$$;

CREATE TRIGGER webhook_events_notify AFTER INSERT ON webhook_events FOR EACH STATEMENT EXECUTE FUNCTION runyard_notify_outbox();
CREATE TRIGGER pending_run_jobs_notify AFTER INSERT ON pending_run_jobs FOR EACH STATEMENT EXECUTE FUNCTION runyard_notify_outbox();
