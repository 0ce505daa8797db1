import { ACTIVE_STATUSES, TERMINAL_STATUSES } from '../../shared/runs/lifecycle.js';
import { databaseFunction, sqlStatusArray } from './databaseFunction.js';

/** When a chat's run ends, its first queued message becomes its next run, in the same transaction (shared/chats/promotion.ts). */
export default databaseFunction(
  'runyard_promote_queued_message',
  `CREATE OR REPLACE FUNCTION public.runyard_promote_queued_message()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  PERFORM runyard_start_next_queued_message(NEW.chat_id);
  RETURN NULL;
END
$function$;`,
  [
    `CREATE OR REPLACE TRIGGER runs_promote_queued_message AFTER UPDATE OF status ON runs FOR EACH ROW WHEN ((old.status = ANY (${sqlStatusArray(ACTIVE_STATUSES)})) AND (new.status = ANY (${sqlStatusArray(TERMINAL_STATUSES)}))) EXECUTE FUNCTION runyard_promote_queued_message();`,
  ],
);
