-- runyard_provision_run (one run per call) was kept for api processes of the release before the
-- batched runyard_provision_runs; every api since calls the batched function, so a rolling deploy
-- from the previous release no longer needs it.
DROP FUNCTION IF EXISTS runyard_provision_run(uuid, integer, uuid, uuid, uuid, text, text, integer, text, text, jsonb, jsonb, uuid, text, text, text[], timestamptz);
